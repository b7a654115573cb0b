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

    /// Parses a strict wire timestamp (UTC with `Z`).
    pub fn parse_utc(s: &str) -> Result<Self, TimestampError> {
        let err = || TimestampError {
            input: s.chars().take(64).collect(),
        };
        if !(s.ends_with('Z') || s.ends_with('z')) {
            return Err(err());
        }
        let dt = DateTime::parse_from_rfc3339(s).map_err(|_| err())?;
        Ok(Self::from_datetime(dt.with_timezone(&Utc)))
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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
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
        let s = String::deserialize(d)?;
        Self::parse_utc(&s).map_err(serde::de::Error::custom)
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
