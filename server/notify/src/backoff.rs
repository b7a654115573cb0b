//! When the outbox tries again, and when it gives up: pure functions of the attempt count, the
//! receiver's `Retry-After` and the event's age.
//!
//! - [`next_attempt`]: exponential backoff from [`BASE_BACKOFF`] (5 s) doubling per attempt up
//!   to [`MAX_BACKOFF`] (1 h), with ±50 % jitter so that replicas and sinks recovering from the
//!   same outage do not retry in lockstep. A `Retry-After` (or GitHub's rate-limit reset) wins
//!   when it is longer, capped at [`MAX_RETRY_AFTER`].
//! - [`is_dead`]: an event still undelivered `max_age` after its first attempt is a dead letter.
//! - [`parse_retry_after`]: `Retry-After` in delay-seconds or HTTP-date form.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The delay after the first failed attempt, before jitter.
pub const BASE_BACKOFF: Duration = Duration::from_secs(5);
/// The longest delay between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The longest `Retry-After` honoured; a receiver asking for more is retried after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The delay before the next attempt, `attempts` being the number of attempts made so far
/// (1 after the first failure) and `outcome_after` the wait the receiver asked for.
pub fn next_attempt(attempts: u32, outcome_after: Option<Duration>) -> Duration {
    next_attempt_with(attempts, outcome_after, random_unit())
}

/// [`next_attempt`] with the jitter drawn by the caller: `unit` in `[0, 1]` maps the nominal
/// delay `d` onto `[d/2, 3d/2]` (so `0.5` is no jitter).
pub fn next_attempt_with(attempts: u32, outcome_after: Option<Duration>, unit: f64) -> Duration {
    let doublings = attempts.saturating_sub(1).min(20);
    let nominal = BASE_BACKOFF
        .saturating_mul(1u32 << doublings)
        .min(MAX_BACKOFF);
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let jittered = nominal.mul_f64(0.5 + unit).min(MAX_BACKOFF);
    match outcome_after {
        Some(after) => jittered.max(after.min(MAX_RETRY_AFTER)),
        None => jittered,
    }
}

/// Whether an event first attempted `first_attempt_age` ago is past saving.
pub fn is_dead(first_attempt_age: Duration, max_age: Duration) -> bool {
    first_attempt_age >= max_age
}

/// A `Retry-After` header value as a delay from `now`: delay-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`; a date in the past is no delay). Capped at
/// [`MAX_RETRY_AFTER`]; `None` when it is neither form.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let delay = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = DateTime::parse_from_rfc2822(value).ok()?;
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// A uniform number in `[0, 1)` from the OS; `0.5` (no jitter) if the OS has none.
fn random_unit() -> f64 {
    match getrandom::u64() {
        Ok(x) => (x >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn doubles_from_five_seconds_to_an_hour() {
        assert_eq!(next_attempt_with(1, None, 0.5), S(5));
        assert_eq!(next_attempt_with(2, None, 0.5), S(10));
        assert_eq!(next_attempt_with(3, None, 0.5), S(20));
        assert_eq!(next_attempt_with(0, None, 0.5), S(5));
        assert_eq!(next_attempt_with(10, None, 0.5), S(2560));
        assert_eq!(next_attempt_with(11, None, 0.5), MAX_BACKOFF);
        assert_eq!(next_attempt_with(u32::MAX, None, 0.5), MAX_BACKOFF);
    }

    #[test]
    fn jitter_is_plus_minus_half() {
        assert_eq!(next_attempt_with(3, None, 0.0), S(10));
        assert_eq!(next_attempt_with(3, None, 1.0), S(30));
        assert_eq!(next_attempt_with(3, None, 7.0), S(30));
        assert_eq!(next_attempt_with(3, None, f64::NAN), S(20));
        // The cap holds after jitter too.
        assert_eq!(next_attempt_with(30, None, 1.0), MAX_BACKOFF);
        for attempts in 1..30 {
            let d = next_attempt(attempts, None);
            let nominal = next_attempt_with(attempts, None, 0.5);
            assert!(d >= nominal / 2 && d <= (nominal * 3 / 2).min(MAX_BACKOFF));
        }
    }

    #[test]
    fn retry_after_wins_when_longer() {
        assert_eq!(next_attempt_with(1, Some(S(120)), 0.5), S(120));
        assert_eq!(next_attempt_with(8, Some(S(1)), 0.5), S(640));
        assert_eq!(next_attempt_with(1, Some(S(86_400)), 0.5), MAX_RETRY_AFTER);
    }

    #[test]
    fn dead_after_max_age() {
        assert!(!is_dead(S(10), S(86_400)));
        assert!(is_dead(S(86_400), S(86_400)));
        assert!(is_dead(S(90_000), S(86_400)));
    }

    #[test]
    fn retry_after_forms() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after(" 30 ", now), Some(S(30)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(S(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }
}
