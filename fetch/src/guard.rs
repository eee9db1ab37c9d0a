//! The address guard: which hosts a fetch may reach (public unicast, or an allow-listed
//! network), in every IPv4, IPv6 and IPv4-in-IPv6 form.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use alloy::transports::http::reqwest;
use ipnet::IpNet;

use super::error::{FetchError, cut};

/// Networks a fetch may reach although they are internal: a devnet's loopback, a test's, a
/// provider's own storage gateway on its LAN. Empty by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

impl AllowList {
    /// Parse entries: an address (`127.0.0.1`, `::1`) or a network (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.as_ref().trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("{e:?} is not an address or a network (such as 10.0.0.0/8 or ::1)")
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Loopback (127.0.0.0/8 and ::1): for a market whose nodes run on this machine.
    pub fn loopback() -> Self {
        Self(vec![
            IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8).expect("a /8")),
            IpNet::from(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ])
    }

    /// Whether `ip` may be connected to: a public address, or one the list names.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !is_internal(ip)
            || self
                .0
                .iter()
                .any(|n| n.contains(&ip) || n.contains(&canonical(ip)))
    }
}

/// An IPv4 address embedded in IPv6 (mapped `::ffff:a.b.c.d`, translated `::ffff:0:a.b.c.d`,
/// compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::`) as that IPv4
/// address; anything else as is.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return IpAddr::V4(low); // IPv4-translated (SIIT) `::ffff:0:a.b.c.d`
    }
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        return IpAddr::V4(low); // IPv4-compatible (deprecated), not :: or ::1
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(low);
    }
    if s[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    ip
}

/// Why a host cannot be connected to ([`permitted_addrs`]).
#[derive(Debug)]
pub(crate) enum Unresolved {
    /// Its name did not resolve.
    Lookup(std::io::Error),
    /// It is, or resolves to, an address the allow-list does not permit.
    Internal(FetchError),
}

/// `host`'s addresses (at `port`), all of them permitted by `allow`: a name any of whose addresses
/// is internal is refused whole (the client's resolver and the shell's connect both hold to it).
pub(crate) async fn permitted_addrs(
    allow: &AllowList,
    host: &str,
    port: u16,
) -> Result<Vec<std::net::SocketAddr>, Unresolved> {
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(Unresolved::Lookup)?
        .collect();
    if let Some(bad) = addrs.iter().find(|a| !allow.permits(a.ip())) {
        return Err(Unresolved::Internal(FetchError::Internal {
            host: host.to_owned(),
            addr: bad.ip(),
        }));
    }
    Ok(addrs)
}

/// Whether `ip` is not a public unicast address: loopback, private, link-local, shared
/// (carrier-grade NAT), multicast, broadcast, reserved, documentation, benchmarking or
/// unspecified, IPv4 or IPv6, and IPv4 carried in IPv6.
pub fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            a == 0 // "this network", 0.0.0.0
                || a == 10
                || a == 127
                || (a == 100 && (64..128).contains(&b)) // shared address space
                || (a == 169 && b == 254) // link-local, cloud metadata
                || (a == 172 && (16..32).contains(&b))
                || (a == 192 && b == 168)
                || (a == 192 && b == 0 && (c == 0 || c == 2)) // IETF, TEST-NET-1
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || (a == 198 && b == 51 && c == 100) // TEST-NET-2
                || (a == 203 && b == 0 && c == 113) // TEST-NET-3
                || a >= 224 // multicast, reserved, broadcast
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_unspecified()
                || v6.is_loopback()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] & 0xff00) == 0xff00 // multicast
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || s[..6] == [0; 6] // IPv4-compatible and :: forms not caught above
                // Local-use NAT64 (RFC 8215: its IPv4 may sit anywhere, so all of it), Teredo
                // (a tunnel to an IPv4 host), discard-only, benchmarking.
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
                || (s[0] == 0x2001 && s[1] == 0)
                || s[..4] == [0x100, 0, 0, 0]
                || (s[0] == 0x2001 && s[1] == 2 && s[2] == 0)
        }
    }
}

/// The scheme and literal host of `url`, held to the rules.
pub(crate) fn check_url(url: &reqwest::Url, allow: &AllowList) -> Result<(), FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::Scheme {
            uri: cut(url.as_str()),
        });
    }
    let addr = match url.host() {
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
        Some(url::Host::Domain(_)) => return Ok(()), // checked by the resolver on connect
        None => {
            return Err(FetchError::BadUri {
                uri: cut(url.as_str()),
                why: "it names no host".into(),
            });
        }
    };
    if allow.permits(addr) {
        Ok(())
    } else {
        Err(FetchError::Internal {
            host: url.host_str().unwrap_or_default().to_owned(),
            addr,
        })
    }
}
