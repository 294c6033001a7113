//! Resolves the guard settings of a route (`allow_ips`, `rate_limit`, `failed_verify_limit`,
//! `replay`, `max_in_flight`, `store_failure`, `max_header_bytes`) and the `store:` block.

use std::time::Duration;

use super::error::Problems;
use super::raw::{RawGuards, RawRateLimit, RawReplay, RawStore};
use super::{
    units, DeliveryId, Guards, Limit, RateKey, RateLimit, Replay, StoreFailure, StoreSettings,
};

const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
const DEFAULT_MAX_ENTRIES: usize = 100_000;
const MIN_REPLAY_WINDOW: Duration = Duration::from_secs(3600);
/// Failed verifications admitted per client IP: 30 at once, then one every 2 seconds.
const DEFAULT_FAILED_VERIFY_LIMIT: Limit = Limit {
    interval: Duration::from_secs(2),
    burst: 30,
};

pub fn resolve_guards(
    raw: RawGuards,
    tolerance: Duration,
    at: &str,
    problems: &mut Problems,
) -> Guards {
    let allow_ips = raw
        .allow_ips
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter_map(|(i, text)| cidr(text, &format!("{at}.allow_ips[{i}]"), problems))
        .collect();
    let rate_limit = raw.rate_limit.and_then(|limit| {
        let path = format!("{at}.rate_limit");
        let key = rate_key(limit.key.as_deref(), &path, problems)?;
        bucket(&limit, &path, problems).map(|limit| RateLimit { key, limit })
    });
    let failed_verify_limit = match raw.failed_verify_limit {
        None => Some(DEFAULT_FAILED_VERIFY_LIMIT),
        Some(limit) => {
            if limit.key.is_some() {
                problems.add(
                    format!("{at}.failed_verify_limit.key"),
                    "failed_verify_limit always counts by client IP; remove `key`",
                );
            }
            bucket(&limit, &format!("{at}.failed_verify_limit"), problems)
        }
    };
    let replay = replay(raw.replay, tolerance, &format!("{at}.replay"), problems);
    let max_in_flight = raw.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
    if max_in_flight == 0 {
        problems.add(
            format!("{at}.max_in_flight"),
            "max_in_flight must be at least 1",
        );
    }
    let store_failure = match raw.store_failure.as_deref() {
        None | Some("fail_closed") => StoreFailure::Closed,
        Some("fail_open") => StoreFailure::Open,
        Some(other) => {
            problems.add(
                format!("{at}.store_failure"),
                format!("unknown store_failure {other:?}; use fail_closed or fail_open"),
            );
            StoreFailure::Closed
        }
    };
    let max_header_bytes = super::resolve::size(
        raw.max_header_bytes.as_deref(),
        &format!("{at}.max_header_bytes"),
        DEFAULT_MAX_HEADER_BYTES,
        problems,
    );
    Guards {
        allow_ips,
        rate_limit,
        failed_verify_limit,
        replay,
        max_in_flight,
        store_failure,
        max_header_bytes,
    }
}

pub fn resolve_store(raw: Option<RawStore>, problems: &mut Problems) -> StoreSettings {
    let raw = raw.unwrap_or_default();
    match raw.redis {
        Some(url) => {
            if raw.max_entries.is_some() {
                problems.add(
                    "store.max_entries",
                    "max_entries only applies to the in-memory store; Redis expires entries itself",
                );
            }
            if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                problems.add(
                    "store.redis",
                    "invalid Redis URL; write it as redis://HOST:PORT or rediss://HOST:PORT",
                );
            }
            StoreSettings::Redis {
                url,
                prefix: raw.prefix.unwrap_or_else(|| "hookgate:".to_string()),
            }
        }
        None => {
            if raw.prefix.is_some() {
                problems.add(
                    "store.prefix",
                    "prefix only applies to a Redis store; add `redis:` or remove it",
                );
            }
            let max_entries = raw.max_entries.unwrap_or(DEFAULT_MAX_ENTRIES);
            if max_entries == 0 {
                problems.add("store.max_entries", "max_entries must be at least 1");
            }
            StoreSettings::Memory { max_entries }
        }
    }
}

/// Parses a CIDR block, or a single address as a block of one.
pub fn cidr(text: &str, path: &str, problems: &mut Problems) -> Option<ipnet::IpNet> {
    let parsed = text
        .parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
    match parsed {
        Ok(net) => Some(net.trunc()),
        Err(_) => {
            problems.add(path, format!("invalid address block {text:?}; write a CIDR such as 10.0.0.0/8 or ::1/128, or one address"));
            None
        }
    }
}

fn rate_key(key: Option<&str>, path: &str, problems: &mut Problems) -> Option<RateKey> {
    match key.unwrap_or("client_ip") {
        "client_ip" => Some(RateKey::ClientIp),
        "route" => Some(RateKey::Route),
        other => match other
            .strip_prefix("header:")
            .map(|name| http::HeaderName::from_bytes(name.trim().as_bytes()))
        {
            Some(Ok(name)) => Some(RateKey::Header(name)),
            _ => {
                problems.add(
                    format!("{path}.key"),
                    format!(
                        "unknown rate limit key {other:?}; use client_ip, route or header:NAME"
                    ),
                );
                None
            }
        },
    }
}

/// Resolves a bucket; `None` when it is turned off or invalid.
fn bucket(raw: &RawRateLimit, path: &str, problems: &mut Problems) -> Option<Limit> {
    if raw.enabled == Some(false) {
        return None;
    }
    let Some(rate) = raw.rate.as_deref() else {
        problems.add(
            path,
            "rate limit has no `rate`; add one such as `rate: 50/s`",
        );
        return None;
    };
    let Some((count, interval)) = parse_rate(rate) else {
        problems.add(
            format!("{path}.rate"),
            format!(
                "invalid rate {rate:?}; write COUNT/UNIT with unit s, m or h, such as 50/s or 10/m"
            ),
        );
        return None;
    };
    let burst = raw.burst.unwrap_or(count);
    if burst == 0 {
        problems.add(format!("{path}.burst"), "burst must be at least 1");
        return None;
    }
    Some(Limit { interval, burst })
}

/// Parses `COUNT/UNIT` into the count and the time between two requests.
fn parse_rate(text: &str) -> Option<(u32, Duration)> {
    let (count, unit) = text.trim().split_once('/')?;
    let count: u32 = count.trim().parse().ok().filter(|c| *c > 0)?;
    let period = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        _ => return None,
    };
    Some((count, period / count))
}

fn replay(
    raw: Option<RawReplay>,
    tolerance: Duration,
    path: &str,
    problems: &mut Problems,
) -> Option<Replay> {
    let raw = raw.unwrap_or(RawReplay {
        enabled: None,
        id: None,
        window: None,
    });
    if raw.enabled == Some(false) {
        return None;
    }
    let id = match raw.id.as_deref().unwrap_or("auto") {
        "auto" => DeliveryId::Auto,
        "signature" => DeliveryId::Signature,
        other => {
            if let Some(name) = other.strip_prefix("header:") {
                match http::HeaderName::from_bytes(name.trim().as_bytes()) {
                    Ok(name) => DeliveryId::Header(name),
                    Err(_) => {
                        problems.add(
                            format!("{path}.id"),
                            format!("invalid header name in {other:?}"),
                        );
                        return None;
                    }
                }
            } else if let Some(field) = other.strip_prefix("json:").filter(|f| !f.is_empty()) {
                DeliveryId::JsonField(field.to_string())
            } else {
                problems.add(format!("{path}.id"), format!("unknown delivery id {other:?}; use auto, signature, header:NAME or json:FIELD"));
                return None;
            }
        }
    };
    let default_window = tolerance.max(MIN_REPLAY_WINDOW);
    let window = match raw.window.as_deref().map(units::parse_duration) {
        None => default_window,
        Some(Ok(window)) if window >= tolerance => window,
        Some(Ok(_)) => {
            problems.add(format!("{path}.window"), "the replay window must be at least the route's tolerance, or a replay inside the tolerance would pass");
            default_window
        }
        Some(Err(message)) => {
            problems.add(format!("{path}.window"), message);
            default_window
        }
    };
    Some(Replay { id, window })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        assert_eq!(parse_rate("50/s"), Some((50, Duration::from_millis(20))));
        assert_eq!(parse_rate("10/m"), Some((10, Duration::from_secs(6))));
        assert_eq!(parse_rate("1/h"), Some((1, Duration::from_secs(3600))));
        assert_eq!(parse_rate("0/s"), None);
        assert_eq!(parse_rate("5 per second"), None);
        assert_eq!(parse_rate("5/day"), None);
    }
}
