//! Guards beside verification: which client sent a request (`client_ip`), whether it may use
//! the route (`allow_ips`), and the delivery id that duplicate detection remembers. The
//! rate-limit and duplicate state itself lives in `store`.

mod client_ip;
mod delivery;

pub use client_ip::client_ip;
pub use delivery::delivery_id;

use std::net::IpAddr;

use crate::config::{Guards, RateKey, RateLimit};

/// Returns whether `client` may use a route with these guards.
pub fn is_allowed(guards: &Guards, client: Option<IpAddr>) -> bool {
    if guards.allow_ips.is_empty() {
        return true;
    }
    let Some(client) = client.map(canonical) else {
        return false;
    };
    guards.allow_ips.iter().any(|net| net.contains(&client))
}

/// Returns the store key of the bucket a request falls into under `limit` on `route`.
pub fn rate_key(
    route: &str,
    limit: &RateLimit,
    client: Option<IpAddr>,
    headers: &http::HeaderMap,
) -> String {
    match &limit.key {
        RateKey::ClientIp => format!(
            "{route}:ip:{}",
            client
                .map(canonical)
                .map_or("-".to_string(), |ip| ip.to_string())
        ),
        RateKey::Route => format!("{route}:route"),
        RateKey::Header(name) => {
            let value = headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            format!("{route}:header:{}", value.unwrap_or_default())
        }
    }
}

/// Returns the store key of a client's failed-verification bucket, shared by all routes.
pub fn failure_key(client: Option<IpAddr>) -> String {
    format!(
        "failed:{}",
        client
            .map(canonical)
            .map_or("-".to_string(), |ip| ip.to_string())
    )
}

/// Maps an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) to plain IPv4, so that one client has
/// one identity and IPv4 blocks match it.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn guards(allow: &[&str]) -> Guards {
        Guards {
            allow_ips: allow.iter().map(|a| a.parse().expect("cidr")).collect(),
            rate_limit: None,
            failed_verify_limit: None,
            replay: None,
            max_in_flight: 1,
            store_failure: crate::config::StoreFailure::Closed,
            max_header_bytes: 1024,
        }
    }

    #[test]
    fn allowlist_matches_v4_v6_and_mapped() {
        let guards = guards(&["10.0.0.0/8", "::1/128"]);
        assert!(is_allowed(&guards, Some("10.1.2.3".parse().expect("ip"))));
        assert!(is_allowed(
            &guards,
            Some("::ffff:10.1.2.3".parse().expect("ip"))
        ));
        assert!(is_allowed(&guards, Some("::1".parse().expect("ip"))));
        assert!(!is_allowed(&guards, Some("127.0.0.1".parse().expect("ip"))));
        assert!(!is_allowed(&guards, None));
    }

    #[test]
    fn empty_allowlist_allows_everyone() {
        assert!(is_allowed(&guards(&[]), None));
    }

    #[test]
    fn rate_keys_separate_routes_and_clients() {
        let limit = RateLimit {
            key: RateKey::ClientIp,
            limit: crate::store::Limit {
                interval: Duration::from_secs(1),
                burst: 1,
            },
        };
        let headers = http::HeaderMap::new();
        let a = rate_key(
            "a",
            &limit,
            Some("127.0.0.1".parse().expect("ip")),
            &headers,
        );
        let b = rate_key(
            "b",
            &limit,
            Some("127.0.0.1".parse().expect("ip")),
            &headers,
        );
        assert_ne!(a, b);
        assert_eq!(a, "a:ip:127.0.0.1");
    }
}
