//! RFC 3339 timestamps, which Twitch and Zendesk send in a header and sign as text.
//!
//! Parsing is strict: upper-case `T` and `Z`, two-digit fields, a real calendar date, seconds
//! up to 59 (a leap second is rejected), and at most nine fraction digits. Because every field
//! has a fixed width and the text ends in `Z` or a `±HH:MM` offset, no byte can move between
//! the timestamp and whatever the scheme signs next to it while the timestamp stays valid.

use super::Failure;

const SECONDS_PER_DAY: i64 = 86_400;

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` and returns Unix seconds, rounded down.
pub(super) fn parse(text: &str) -> Result<i64, Failure> {
    let bytes = text.as_bytes();
    // The shortest valid text is `YYYY-MM-DDTHH:MM:SSZ`.
    if bytes.len() < 20 {
        return Err(Failure::TimestampMalformed);
    }
    let (date_time, rest) = bytes.split_at(19);
    let [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2, b'T', h1, h2, b':', n1, n2, b':', s1, s2] =
        date_time
    else {
        return Err(Failure::TimestampMalformed);
    };
    let year = number(&[*y1, *y2, *y3, *y4])?;
    let month = number(&[*m1, *m2])?;
    let day = number(&[*d1, *d2])?;
    let hour = number(&[*h1, *h2])?;
    let minute = number(&[*n1, *n2])?;
    let second = number(&[*s1, *s2])?;
    let valid_date = (1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day);
    if !valid_date || hour > 23 || minute > 59 || second > 59 {
        return Err(Failure::TimestampMalformed);
    }

    let offset = offset_seconds(skip_fraction(rest)?)?;
    let days = days_from_civil(year, month, day);
    Ok(days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offset)
}

/// Writes Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`, or returns `None` outside years 0 to 9999.
pub(super) fn format(unix_seconds: i64) -> Option<String> {
    let days = unix_seconds.div_euclid(SECONDS_PER_DAY);
    let time = unix_seconds.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3600,
        time / 60 % 60,
        time % 60
    ))
}

/// Returns the text after an optional `.` and 1 to 9 digits.
fn skip_fraction(rest: &[u8]) -> Result<&[u8], Failure> {
    let Some(fraction) = rest.strip_prefix(b".") else {
        return Ok(rest);
    };
    let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=9).contains(&digits) {
        return Err(Failure::TimestampMalformed);
    }
    Ok(&fraction[digits..])
}

/// Returns the seconds to subtract from local time to get UTC: 0 for `Z`, else `±HH:MM`.
fn offset_seconds(offset: &[u8]) -> Result<i64, Failure> {
    let (sign, h1, h2, m1, m2) = match offset {
        b"Z" => return Ok(0),
        [b'+', h1, h2, b':', m1, m2] => (1, h1, h2, m1, m2),
        [b'-', h1, h2, b':', m1, m2] => (-1, h1, h2, m1, m2),
        _ => return Err(Failure::TimestampMalformed),
    };
    let hours = number(&[*h1, *h2])?;
    let minutes = number(&[*m1, *m2])?;
    if hours > 23 || minutes > 59 {
        return Err(Failure::TimestampMalformed);
    }
    Ok(sign * (hours * 3600 + minutes * 60))
}

fn number(digits: &[u8]) -> Result<i64, Failure> {
    digits.iter().try_fold(0, |value, byte| {
        if !byte.is_ascii_digit() {
            return Err(Failure::TimestampMalformed);
        }
        Ok(value * 10 + i64::from(byte - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date, counting in 400-year eras that start
/// on 1 March, so that the leap day falls at the end of an era's year.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719,468 days lie between 0000-03-01 and 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// Returns the date of a day count since 1970-01-01, the inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000;

    #[test]
    fn parses_utc_seconds() {
        assert_eq!(parse("2023-11-14T22:13:20Z"), Ok(T));
        assert_eq!(parse("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse("1969-12-31T23:59:59Z"), Ok(-1));
        assert_eq!(parse("2000-02-29T00:00:00Z"), Ok(951_782_400));
    }

    #[test]
    fn fraction_rounds_down() {
        assert_eq!(parse("2023-11-14T22:13:20.999999999Z"), Ok(T));
        assert_eq!(parse("2023-11-14T22:13:20.5Z"), Ok(T));
    }

    #[test]
    fn offsets_convert_to_utc() {
        assert_eq!(parse("2023-11-15T00:13:20+02:00"), Ok(T));
        assert_eq!(parse("2023-11-14T16:43:20-05:30"), Ok(T));
        assert_eq!(parse("2023-11-14T22:13:20+00:00"), Ok(T));
    }

    #[test]
    fn rejects_malformed_text() {
        for text in [
            "",
            "2023-11-14T22:13:20",
            "2023-11-14 22:13:20Z",
            "2023-11-14t22:13:20Z",
            "2023-11-14T22:13:20z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20.1234567890Z",
            "2023-11-14T22:13:20+0200",
            "2023-11-14T22:13:20+24:00",
            "2023-11-14T22:13:20Z ",
            "2023-11-14T22:13:20ZZ",
            "2023-13-14T22:13:20Z",
            "2023-00-14T22:13:20Z",
            "2023-02-29T22:13:20Z",
            "1900-02-29T00:00:00Z",
            "2023-11-31T22:13:20Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:60:20Z",
            "2016-12-31T23:59:60Z",
            "+2023-11-14T22:13:20Z",
            "2023-1-14T22:13:20Z",
            "1700000000",
            "２０２３-11-14T22:13:20Z",
        ] {
            assert_eq!(parse(text), Err(Failure::TimestampMalformed), "{text:?}");
        }
    }

    #[test]
    fn format_round_trips() {
        for seconds in [0, -1, T, 951_782_400, 253_402_300_799, -62_167_219_200] {
            let text = format(seconds);

            assert_eq!(text.as_deref().map(parse), Some(Ok(seconds)), "{seconds}");
        }
    }

    #[test]
    fn format_writes_utc() {
        assert_eq!(format(T).as_deref(), Some("2023-11-14T22:13:20Z"));
    }

    #[test]
    fn format_rejects_years_outside_four_digits() {
        assert_eq!(format(253_402_300_800), None);
        assert_eq!(format(-62_167_219_201), None);
        assert_eq!(format(i64::MAX), None);
        assert_eq!(format(i64::MIN), None);
    }

    #[test]
    fn civil_conversion_matches_day_by_day() {
        // Walks every day from 1600 to 2400, across leap and century years.
        let mut days = days_from_civil(1600, 1, 1);
        for year in 1600..2400 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    assert_eq!(days_from_civil(year, month, day), days);
                    assert_eq!(civil_from_days(days), (year, month, day));
                    days += 1;
                }
            }
        }
    }
}
