//! Parsers for the human-readable durations and byte sizes used in `gateway.yaml`.

use std::time::Duration;

/// Parses a duration such as `300ms`, `10s`, `5m` or `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        format!("invalid duration {text:?} ({e}); write a number with a unit, such as 30s or 5m")
    })
}

/// Parses a byte size such as `1024`, `64KiB`, `1MiB` or `10MB`.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let invalid = || {
        format!("invalid size {text:?}; write a number with an optional unit: B, KiB, MiB, GiB, KB, MB or GB")
    };
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().map_err(|_| invalid())?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(invalid()),
    };
    number
        .checked_mul(multiplier)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("size {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_and_decimal_sizes() {
        assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
        assert_eq!(parse_bytes("64 KiB"), Ok(65_536));
        assert_eq!(parse_bytes("10MB"), Ok(10_000_000));
        assert_eq!(parse_bytes("512"), Ok(512));
    }

    #[test]
    fn rejects_unknown_size_units() {
        assert!(parse_bytes("1 megabyte").is_err());
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("99999999999999GiB").is_err());
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 minutes please").is_err());
        assert!(parse_duration("10").is_err());
    }
}
