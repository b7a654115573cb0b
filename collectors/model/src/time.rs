//! Timestamps as they appear on the wire: RFC 3339, UTC, `Z` suffix, millisecond precision.
//!
//! One textual form per instant keeps canonical encodings stable: whatever precision a client
//! sends, the record is re-serialised with exactly three fractional digits before it is hashed.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant in UTC, serialised as `2026-11-20T10:00:00.000Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

/// A timestamp string that is not RFC 3339 in UTC.
#[derive(Debug, thiserror::Error)]
#[error("invalid timestamp {input:?}: expected RFC 3339 in UTC such as 2026-11-20T10:00:00Z")]
pub struct TimestampError {
    input: String,
}

impl Timestamp {
    /// The current time, truncated to milliseconds.
    pub fn now() -> Self {
        Self::from_datetime(Utc::now())
    }

    /// Wraps a chrono instant, truncating to milliseconds so that it round-trips exactly.
    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        let ms = dt.timestamp_millis();
        Self(Utc.timestamp_millis_opt(ms).single().unwrap_or(dt))
    }

    /// From Unix milliseconds (MLflow and many APIs use them); `None` when out of range.
    pub fn from_unix_millis(ms: i64) -> Option<Self> {
        Utc.timestamp_millis_opt(ms).single().map(Self)
    }

    /// From Unix seconds; `None` when out of range.
    pub fn from_unix_secs(secs: i64) -> Option<Self> {
        Utc.timestamp_opt(secs, 0).single().map(Self)
    }

    /// The chrono value.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// This instant plus `ms` milliseconds (negative: minus); `None` past the representable range.
    pub fn checked_add_millis(&self, ms: i64) -> Option<Self> {
        self.0
            .checked_add_signed(chrono::TimeDelta::try_milliseconds(ms)?)
            .map(Self::from_datetime)
    }

    /// This instant plus `days` days (a freshness window); `None` past the representable range.
    pub fn checked_add_days(&self, days: u32) -> Option<Self> {
        self.checked_add_millis(i64::from(days).checked_mul(86_400_000)?)
    }

    /// Parses a strict wire timestamp (UTC with `Z`).
    pub fn parse_utc(s: &str) -> Result<Self, TimestampError> {
        if let Some(t) = Self::parse_wire_form(s) {
            return Ok(t);
        }
        let err = || TimestampError {
            input: s.chars().take(64).collect(),
        };
        if !(s.ends_with('Z') || s.ends_with('z')) {
            return Err(err());
        }
        let dt = DateTime::parse_from_rfc3339(s).map_err(|_| err())?;
        Ok(Self::from_datetime(dt.with_timezone(&Utc)))
    }

    /// The wire form exactly (`2026-11-20T10:00:00.000Z`, what every stored record carries),
    /// read without the general RFC 3339 parser: reading a large ledger parses millions of
    /// them. `None` for anything else, which [`Timestamp::parse_utc`] then reads (or rejects)
    /// as before; the result is the same instant the general parser gives.
    fn parse_wire_form(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 24
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
            || b[19] != b'.'
            || b[23] != b'Z'
        {
            return None;
        }
        let num = |from: usize, to: usize| {
            b.get(from..to)?.iter().try_fold(0u32, |n, &d| {
                d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
            })
        };
        let year = i32::try_from(num(0, 4)?).ok()?;
        let date = chrono::NaiveDate::from_ymd_opt(year, num(5, 7)?, num(8, 10)?)?;
        let second = num(17, 19)?;
        // A leap second (:60) is the general parser's to read.
        if second >= 60 {
            return None;
        }
        let t = date.and_hms_milli_opt(num(11, 13)?, num(14, 16)?, second, num(20, 23)?)?;
        Some(Self(Utc.from_utc_datetime(&t)))
    }

    /// Parses any RFC 3339 timestamp (any offset) or a bare date, converting to UTC. Used for the
    /// artifact's own dates, which come from files people write.
    pub fn parse_lenient(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(Self::from_datetime(dt.with_timezone(&Utc)));
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return d
                .and_hms_opt(0, 0, 0)
                .map(|n| Self(Utc.from_utc_datetime(&n)));
        }
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
            return Some(Self(Utc.from_utc_datetime(&n)));
        }
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S") {
            return Some(Self(Utc.from_utc_datetime(&n)));
        }
        None
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(dt: DateTime<Utc>) -> Self {
        Self::from_datetime(dt)
    }
}

impl fmt::Display for Timestamp {
    /// `to_rfc3339_opts(SecondsFormat::Millis, true)`, written without a temporary string for
    /// years 0–9999 (every canonical encoding of a record writes two or three of these).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::{Datelike, Timelike};
        let d = self.0.naive_utc();
        let (year, nanos) = (d.year(), d.nanosecond());
        let Ok(year) = u32::try_from(year) else {
            return f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true));
        };
        // Beyond four digits, or a leap second: chrono's formatting.
        if year > 9999 || nanos >= 1_000_000_000 {
            return f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true));
        }
        let mut buf = *b"0000-00-00T00:00:00.000Z";
        for (at, width, mut v) in [
            (0, 4, year),
            (5, 2, d.month()),
            (8, 2, d.day()),
            (11, 2, d.hour()),
            (14, 2, d.minute()),
            (17, 2, d.second()),
            (20, 3, nanos / 1_000_000),
        ] {
            for slot in buf[at..at + width].iter_mut().rev() {
                *slot = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_utc(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// A string's visitor (same errors as `String`'s) that parses the text in place.
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Timestamp, E> {
                Timestamp::parse_utc(s).map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(self, b: &[u8]) -> Result<Timestamp, E> {
                let s = std::str::from_utf8(b)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Bytes(b), &self))?;
                self.visit_str(s)
            }
        }
        d.deserialize_string(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_millis() {
        let t = Timestamp::parse_utc("2026-11-20T10:00:00Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-20T10:00:00.000Z");
        let t2 = Timestamp::parse_utc("2026-11-20T10:00:00.123456Z").unwrap();
        assert_eq!(t2.to_string(), "2026-11-20T10:00:00.123Z");
    }

    /// The fast wire-form parser and writer give exactly what chrono's RFC 3339 parser and
    /// formatter give, across the four-digit years and at the edges.
    #[test]
    fn wire_form_matches_chrono() {
        let general = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|d| Timestamp::from_datetime(d.with_timezone(&Utc)))
        };
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let lo = Timestamp::parse_utc("0000-01-01T00:00:00Z")
            .unwrap()
            .unix_millis();
        let hi = Timestamp::parse_utc("9999-12-31T23:59:59.999Z")
            .unwrap()
            .unix_millis();
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = match i {
                0 => lo,
                1 => hi,
                2 => 0,
                _ => lo + (x % (hi - lo) as u64) as i64,
            };
            let t = Timestamp::from_unix_millis(ms).unwrap();
            let text = t.to_string();
            assert_eq!(text, t.0.to_rfc3339_opts(SecondsFormat::Millis, true));
            assert_eq!(Timestamp::parse_wire_form(&text), Some(t), "{text}");
            assert_eq!(general(&text), Some(t), "{text}");
        }
        for s in [
            "2026-02-29T00:00:00.000Z",
            "2026-11-20T24:00:00.000Z",
            "2026-11-20T10:00:60.000Z",
            "2026-11-20t10:00:00.000Z",
            "2026-11-20T10:00:00.000z",
            "2026-1a-20T10:00:00.000Z",
            "+2026-11-20T10:00:00.00Z",
        ] {
            assert_eq!(Timestamp::parse_wire_form(s), None, "{s}");
            assert_eq!(
                Timestamp::parse_utc(s).ok(),
                general(s).filter(|_| s.ends_with(['Z', 'z'])),
                "{s}"
            );
        }
        let far = Timestamp::from_unix_millis(253_402_300_800_000).unwrap();
        assert_eq!(
            far.to_string(),
            far.0.to_rfc3339_opts(SecondsFormat::Millis, true)
        );
        let err = serde_json::from_str::<Timestamp>("5")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid type: integer `5`, expected a string"),
            "{err}"
        );
        let err = serde_json::from_str::<Timestamp>("\"yesterday\"")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("invalid timestamp \"yesterday\""), "{err}");
    }

    #[test]
    fn rejects_offsets_and_garbage() {
        assert!(Timestamp::parse_utc("2026-11-20T10:00:00+01:00").is_err());
        assert!(Timestamp::parse_utc("yesterday").is_err());
    }

    #[test]
    fn lenient_accepts_dates_and_offsets() {
        assert_eq!(
            Timestamp::parse_lenient("2026-11-21").unwrap().to_string(),
            "2026-11-21T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::parse_lenient("2026-11-21T10:00:00+01:00")
                .unwrap()
                .to_string(),
            "2026-11-21T09:00:00.000Z"
        );
    }
}
