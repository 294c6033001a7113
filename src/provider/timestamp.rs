//! Parsing signed Unix timestamps and checking them against the tolerance window.

use std::time::Duration;

use super::Failure;

/// Digits in `i64::MAX`. Longer text is rejected before any arithmetic.
const MAX_DIGITS: usize = 19;

/// Parses Unix seconds written as 1 to 19 ASCII digits, with no sign, space or fraction.
///
/// Leading zeros are accepted here. Every scheme signs the header text itself, so a zero
/// added in front fails the MAC. Where text that the sender chooses is signed right before
/// the timestamp, [`parse_without_leading_zero`] is needed instead.
pub(super) fn parse(text: &str) -> Result<i64, Failure> {
    if text.is_empty() || text.len() > MAX_DIGITS {
        return Err(Failure::TimestampMalformed);
    }
    text.bytes().try_fold(0i64, |value, byte| {
        if !byte.is_ascii_digit() {
            return Err(Failure::TimestampMalformed);
        }
        value
            .checked_mul(10)
            .and_then(|value| value.checked_add(i64::from(byte - b'0')))
            .ok_or(Failure::TimestampMalformed)
    })
}

/// Parses Unix milliseconds written as 1 to 19 ASCII digits and returns whole Unix seconds,
/// rounded down.
///
/// A leading zero is rejected, unlike in [`parse`]. HubSpot signs the timestamp right after
/// the body with no separator, so a zero allowed here could move between the end of the body
/// and the timestamp without changing the signed bytes or the time.
pub(super) fn parse_millis(text: &str) -> Result<i64, Failure> {
    Ok(parse_without_leading_zero(text)?.div_euclid(1000))
}

/// Parses Unix seconds like [`parse`], but rejects a leading zero. For timestamps signed
/// right after text that the sender chooses, where a `0` could move from the end of that
/// text into the timestamp without changing the signed bytes or the time.
pub(super) fn parse_without_leading_zero(text: &str) -> Result<i64, Failure> {
    if text.len() > 1 && text.starts_with('0') {
        return Err(Failure::TimestampMalformed);
    }
    parse(text)
}

/// Accepts `timestamp` when it is at most `tolerance` before or after `now`, both in Unix
/// seconds. A fraction of a second in `tolerance` is ignored.
pub(super) fn check_window(timestamp: i64, now: i64, tolerance: Duration) -> Result<(), Failure> {
    let age = i128::from(now) - i128::from(timestamp);
    let tolerance = i128::from(tolerance.as_secs());
    if age > tolerance {
        return Err(Failure::TimestampExpired);
    }
    if -age > tolerance {
        return Err(Failure::TimestampInFuture);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn parse_accepts_digits() {
        assert_eq!(parse("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("9223372036854775807"), Ok(i64::MAX));
    }

    #[test]
    fn parse_rejects_non_digits() {
        for text in [
            "",
            "-1",
            "+1700000000",
            " 1700000000",
            "1700000000 ",
            "1700000000.0",
            "1700000000abc",
            "1.7e9",
            "١٧٠٠",
        ] {
            assert_eq!(parse(text), Err(Failure::TimestampMalformed), "{text:?}");
        }
    }

    #[test]
    fn parse_rejects_overflow_and_long_text() {
        assert_eq!(
            parse("9223372036854775808"),
            Err(Failure::TimestampMalformed)
        );
        assert_eq!(
            parse("99999999999999999999"),
            Err(Failure::TimestampMalformed)
        );
        assert_eq!(parse(&"0".repeat(4096)), Err(Failure::TimestampMalformed));
    }

    #[test]
    fn millis_round_down_to_seconds() {
        assert_eq!(parse_millis("1700000000000"), Ok(1_700_000_000));
        assert_eq!(parse_millis("1700000000999"), Ok(1_700_000_000));
        assert_eq!(parse_millis("999"), Ok(0));
        assert_eq!(parse_millis("0"), Ok(0));
    }

    #[test]
    fn millis_reject_leading_zero_and_non_digits() {
        for text in [
            "01700000000000",
            "00",
            "",
            "-1",
            "1700000000000.5",
            "1.7e12",
        ] {
            assert_eq!(
                parse_millis(text),
                Err(Failure::TimestampMalformed),
                "{text:?}"
            );
        }
    }

    #[test]
    fn window_accepts_edges() {
        let t = 1_700_000_000;

        assert_eq!(check_window(t, t, FIVE_MINUTES), Ok(()));
        assert_eq!(check_window(t, t + 300, FIVE_MINUTES), Ok(()));
        assert_eq!(check_window(t, t - 300, FIVE_MINUTES), Ok(()));
    }

    #[test]
    fn window_rejects_old_timestamp() {
        let t = 1_700_000_000;

        assert_eq!(
            check_window(t, t + 301, FIVE_MINUTES),
            Err(Failure::TimestampExpired)
        );
    }

    #[test]
    fn window_rejects_future_timestamp() {
        let t = 1_700_000_000;

        assert_eq!(
            check_window(t, t - 301, FIVE_MINUTES),
            Err(Failure::TimestampInFuture)
        );
        assert_eq!(
            check_window(i64::MAX, 0, FIVE_MINUTES),
            Err(Failure::TimestampInFuture)
        );
    }

    #[test]
    fn window_handles_extreme_values() {
        assert_eq!(
            check_window(0, i64::MIN, Duration::MAX),
            Ok(()),
            "u64::MAX seconds covers any i64 distance"
        );
        assert_eq!(
            check_window(0, i64::MAX, FIVE_MINUTES),
            Err(Failure::TimestampExpired)
        );
    }

    #[test]
    fn window_ignores_subsecond_tolerance() {
        let t = 1_700_000_000;

        assert_eq!(
            check_window(t, t + 1, Duration::from_millis(999)),
            Err(Failure::TimestampExpired)
        );
    }
}
