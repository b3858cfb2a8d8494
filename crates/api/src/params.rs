//! Query-string values shared by the read endpoints.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::ApiError;

/// A point in time: RFC 3339, or a duration ago such as `90s`, `15m`, `24h`, `7d`.
pub fn parse_time(field: &str, s: &str) -> Result<i64, ApiError> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp_nanos() as i64);
    }
    match parse_duration(s) {
        Some(d) => {
            Ok(OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 - d.as_nanos() as i64)
        }
        None => Err(ApiError::bad_request(format!(
            "`{field}`: `{s}` is neither an RFC 3339 time nor a duration like 15m, 24h or 7d"
        ))
        .with("field", field)),
    }
}

/// `90s`, `15m`, `24h`, `7d`, `2w`.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        "w" => n * 7 * 86_400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

/// Cursor of a paged listing: `<nanos>.<hex id>`.
pub fn encode_cursor(nanos: i64, id: &str) -> String {
    format!("{nanos}.{}", hex::encode(id))
}

pub fn decode_cursor(s: &str) -> Result<(i64, String), ApiError> {
    let bad = || {
        ApiError::bad_request("`cursor`: not a cursor returned by this API").with("field", "cursor")
    };
    let (n, id) = s.split_once('.').ok_or_else(bad)?;
    let n = n.parse().map_err(|_| bad())?;
    let id = String::from_utf8(hex::decode(id).map_err(|_| bad())?).map_err(|_| bad())?;
    Ok((n, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_durations_cursors() {
        assert_eq!(parse_duration("15m").unwrap().as_secs(), 900);
        assert_eq!(parse_duration("7d").unwrap().as_secs(), 604_800);
        assert!(parse_duration("soon").is_none());
        assert!(parse_time("since", "2026-11-25T00:00:00Z").is_ok());
        assert_eq!(parse_time("since", "nope").unwrap_err().status, 400);
        let c = encode_cursor(42, "evt/1");
        assert_eq!(decode_cursor(&c).unwrap(), (42, "evt/1".to_string()));
        assert!(decode_cursor("zz").is_err());
    }
}
