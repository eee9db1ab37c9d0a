//! Property tests of the URI guard, which reads URIs a tenant or a provider chose (SECURITY.md
//! PIN-01, PIN-02): whatever form a URI takes, it never reaches a local path or an internal
//! address. (The spec parsers' properties are in `gridlease-primitives`, the matrices' in
//! `gridlease-workload`.)

use proptest::prelude::*;

use crate::{AllowList, check_url};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn pin_01_pin_02_no_uri_reaches_a_local_path_or_an_internal_address(
        scheme in prop::sample::select(vec!["http", "https", "file", "ftp", "HTTP", "data", ""]),
        host in prop::sample::select(vec![
            "127.0.0.1", "0x7f.1", "2130706433", "0177.0.0.1", "[::1]", "[::ffff:127.0.0.1]",
            "169.254.169.254", "10.0.0.1", "[fe80::1]", "0", "127.1", "[::]", "100.64.0.1",
        ]),
        path in "[a-z/._%-]{0,20}",
    ) {
        let uri = format!("{scheme}://{host}/{path}");
        if let Ok(url) = uri.parse::<alloy::transports::http::reqwest::Url>() {
            // Every host above is internal in whatever form the URL parser reads it; a scheme
            // other than http(s) is refused whatever the host.
            prop_assert!(check_url(&url, &AllowList::default()).is_err(), "{uri}");
        }
    }
}
