//! What the node refuses to start on: a corrupt state store (OFF-15), a keystore others can read
//! (OFF-17), and deployments for another chain or naming another contract as the market (OFF-18).

use std::process::Command;

use gridlease_deploy::anvil::{self, ANVIL_KEYS};

use crate::common::*;

#[tokio::test]
async fn off_15_off_17_off_18_the_node_refuses_to_start_on_a_corrupt_store_an_open_keystore_or_another_chain()
 {
    let n = net().await;
    let dir = n.path();
    n.config(&n.url, None);

    // OFF-18: the deployments file is for another chain.
    let d = std::fs::read_to_string(dir.join("deployments.json")).expect("read");
    std::fs::write(
        dir.join("deployments.json"),
        d.replace("\"chainId\": 31337", "\"chainId\": 1"),
    )
    .expect("write");
    let (code, err) = n.refused();
    assert_ne!(code, 0);
    assert!(err.contains("31337") && err.contains('1'), "{err}");
    // OFF-18: the file names another contract (one with code: the USDC token) as the market.
    let mut other: serde_json::Value = serde_json::from_str(&d).expect("json");
    other["contracts"]["Market"]["address"] = serde_json::json!(n.usdc);
    std::fs::write(dir.join("deployments.json"), other.to_string()).expect("write");
    let (code, err) = n.refused();
    assert_ne!(code, 0);
    assert!(
        err.contains("does not answer as this version's market"),
        "{err}"
    );
    std::fs::write(dir.join("deployments.json"), d).expect("write");

    // OFF-15: a corrupt state store: a clear refusal, never a fresh start from `latest`.
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    std::fs::write(dir.join("data/state.db"), vec![0x5a; 8192]).expect("write");
    let (code, err) = n.refused();
    assert_ne!(code, 0);
    assert!(err.contains("state.db"), "names the file: {err}");
    std::fs::remove_file(dir.join("data/state.db")).expect("rm");

    // OFF-17: a keystore (or its password file) that others can read is refused.
    // `cast wallet new` (what operators use) writes keystores readable by others.
    let cast = anvil::find_anvil().expect("anvil").with_file_name("cast");
    let made = Command::new(cast)
        .args(["wallet", "new"])
        .arg(&dir)
        .args(["op.json", "--unsafe-password", "pw"])
        .output()
        .expect("cast runs");
    assert!(made.status.success(), "{made:?}");
    std::fs::write(dir.join("pw"), "pw\n").expect("pw");
    use std::os::unix::fs::PermissionsExt;
    for f in ["op.json", "pw"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    n.config(
        &n.url,
        Some("keystore = \"op.json\"\npassword = \"file:pw\""),
    );
    for f in ["op.json", "pw"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let (code, err) = n.refused();
        assert_ne!(code, 0);
        assert!(err.contains(f) && err.contains("0600"), "{err}");
        assert!(!err.contains(ANVIL_KEYS[3].trim_start_matches("0x")));
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
}
