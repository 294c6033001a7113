//! The client's IP address: the connection's peer, or, when the peer is a trusted proxy, the
//! nearest untrusted address in `X-Forwarded-For`.

use std::net::IpAddr;

use ipnet::IpNet;

/// Returns the client address of a request from `peer`. `X-Forwarded-For` is read right to
/// left, skipping trusted proxies, and only when `peer` itself is trusted; a client can
/// write anything into the header, so entries left of the first untrusted one are ignored.
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &http::HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return Some(peer);
        };
        hops.extend(text.split(','));
    }
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            return Some(nearest);
        };
        if !is_trusted(&ip) {
            return Some(ip);
        }
        nearest = ip;
    }
    Some(nearest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for value in xff {
            map.append("x-forwarded-for", value.parse().expect("header value"));
        }
        map
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("ip"))
    }

    const TRUSTED: &str = "10.0.0.0/8";

    #[test]
    fn untrusted_peer_ignores_header() {
        let trusted = [TRUSTED.parse().expect("cidr")];
        let found = client_ip(ip("192.0.2.7"), &headers(&["203.0.113.9"]), &trusted);
        assert_eq!(found, ip("192.0.2.7"));
    }

    #[test]
    fn trusted_peer_uses_nearest_untrusted_hop() {
        let trusted = [TRUSTED.parse().expect("cidr")];
        let found = client_ip(
            ip("10.0.0.1"),
            &headers(&["1.1.1.1, 203.0.113.9", "10.0.0.2"]),
            &trusted,
        );
        assert_eq!(found, ip("203.0.113.9"));
    }

    #[test]
    fn garbage_hop_stops_at_last_trusted() {
        let trusted = [TRUSTED.parse().expect("cidr")];
        let found = client_ip(
            ip("10.0.0.1"),
            &headers(&["203.0.113.9, nonsense"]),
            &trusted,
        );
        assert_eq!(found, ip("10.0.0.1"));
    }

    #[test]
    fn trusted_peer_without_header_is_client() {
        let trusted = [TRUSTED.parse().expect("cidr")];
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers(&[]), &trusted),
            ip("10.0.0.1")
        );
    }
}
