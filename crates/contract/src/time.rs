//! RFC 3339 times ⇄ unix nanoseconds (UTC), the form events and fixtures carry in JSON.
//!
//! Accepted: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `T`/`Z` in either case, any number
//! of fraction digits (beyond nanoseconds they are cut). Not accepted: leap seconds (`:60`),
//! a missing offset, a space instead of `T`. Written: UTC with `Z`, the fraction only when
//! it is not zero, without trailing zeros (`2024-03-05T23:10:00.5Z`).

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Parses an RFC 3339 time to unix nanoseconds; `None` if it is not one (or is outside the
/// range of `i64` nanoseconds, about the years 1678–2262).
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut fraction: i128 = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &b[start..i.min(start + 9)];
        let mut f: i128 = 0;
        for &c in digits {
            f = f * 10 + i128::from(c - b'0');
        }
        fraction = f * 10i128.pow(9 - digits.len() as u32);
    }
    let offset_seconds = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_seconds;
    i64::try_from(i128::from(seconds) * NANOS_PER_SECOND + fraction).ok()
}

/// Formats unix nanoseconds as RFC 3339 in UTC; `None` for years outside 0000–9999.
pub fn format_time(nanos: i64) -> Option<String> {
    let n = i128::from(nanos);
    let seconds = n.div_euclid(NANOS_PER_SECOND) as i64;
    let fraction = n.rem_euclid(NANOS_PER_SECOND) as u32;
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    if fraction != 0 {
        let digits = format!("{fraction:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    Some(out)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `#[serde(with = "…::rfc3339")]` for an `i64` of unix nanoseconds.
pub mod rfc3339 {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
        let text = super::format_time(*t)
            .ok_or_else(|| serde::ser::Error::custom(format!("{t} ns is not a printable time")))?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_time(&s)
            .ok_or_else(|| D::Error::custom(format!("`{s}` is not an RFC 3339 time")))
    }

    /// The same for `Option<i64>` (absent or `null` is `None`).
    pub mod option {
        use serde::{de::Error, Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(t: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => super::super::parse_time(&s)
                    .map(Some)
                    .ok_or_else(|| D::Error::custom(format!("`{s}` is not an RFC 3339 time"))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_704_067_200_000_000_000; // 2024-01-01T00:00:00Z

    #[test]
    fn parses_utc_offsets_and_fractions() {
        assert_eq!(parse_time("2024-01-01T00:00:00Z"), Some(T0));
        assert_eq!(parse_time("2024-01-01t00:00:00z"), Some(T0));
        assert_eq!(parse_time("2024-01-01T02:00:00+02:00"), Some(T0));
        assert_eq!(parse_time("2023-12-31T19:30:00-04:30"), Some(T0));
        assert_eq!(parse_time("2024-01-01T00:00:00.5Z"), Some(T0 + 500_000_000));
        assert_eq!(
            parse_time("2024-01-01T00:00:00.123456789123Z"),
            Some(T0 + 123_456_789)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_time("1969-12-31T23:59:59Z"), Some(-1_000_000_000));
        assert_eq!(
            parse_time("2024-02-29T12:00:00Z"),
            Some(T0 + (59 * 24 + 12) * 3_600_000_000_000)
        );
    }

    #[test]
    fn rejects_what_is_not_rfc_3339() {
        for bad in [
            "",
            "2024-01-01",
            "2024-01-01T00:00:00",
            "2024-01-01 00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:60Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0200",
            "2024-01-01T00:00:00+24:00",
            "2024-01-01T00:00:00Zjunk",
            "yesterday at noon, roughly",
            "+024-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_utc_and_round_trips() {
        assert_eq!(format_time(T0).unwrap(), "2024-01-01T00:00:00Z");
        assert_eq!(
            format_time(T0 + 500_000_000).unwrap(),
            "2024-01-01T00:00:00.5Z"
        );
        assert_eq!(format_time(-1).unwrap(), "1969-12-31T23:59:59.999999999Z");
        for t in [0, T0, T0 + 1, -86_400_000_000_123, i64::MAX, i64::MIN] {
            assert_eq!(parse_time(&format_time(t).unwrap()), Some(t), "{t}");
        }
    }
}
