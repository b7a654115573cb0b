//! The dashboard's trends (issue 13 item 6, issue 16 item 4): the daily fresh ratio over the last
//! [`TREND_DAYS`] days, across every system and per system.
//!
//! Nothing here decides a status: the figures are sums over the exact per-control intervals that
//! `history.rs` computes (the same ones `/v1/systems/{id}/history`, the control page's strip and
//! the period report use). A day's ratio is the share of that day's applicable control-time that
//! was fresh, over the grid's columns (the A.6/A.7 controls), so it agrees with the grid:
//! `not_applicable` and `excluded` time is left out, and so is the time before the server
//! received a system's first record (the system was not under watch yet).
//!
//! Cost: one replay of each system per computation. The result is kept for a few minutes while
//! the ledger size does not change ([`TrendCache`]), so reloading `/` does not replay the ledger.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;

use aims_catalog::ControlHistory;
use aims_model::{ControlStatus, Timestamp};

use crate::AppState;
use crate::error::ApiError;

/// Days the trends cover (today included).
pub const TREND_DAYS: i64 = 90;

/// How long a computed trend is reused while the ledger does not grow (the last day's figure
/// moves with the clock, so not forever).
const CACHE_MILLIS: i64 = 5 * 60 * 1000;

const DAY_MILLIS: i64 = 86_400_000;

/// One day's fresh and applicable control-time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayShare {
    /// The day's start (UTC midnight).
    pub start: Timestamp,
    /// Milliseconds of control-time that were fresh.
    pub fresh_ms: i64,
    /// Milliseconds of control-time that counted (fresh, stale, drifted or missing).
    pub applicable_ms: i64,
}

impl DayShare {
    /// The fresh share of the day's applicable time; `None` when nothing was applicable.
    pub fn ratio(&self) -> Option<f64> {
        (self.applicable_ms > 0).then(|| self.fresh_ms as f64 / self.applicable_ms as f64)
    }
}

/// The days ending with `now`'s day: starts at UTC midnight, oldest first, all empty.
pub fn day_buckets(now: Timestamp, days: i64) -> Vec<DayShare> {
    let today = now.unix_millis().div_euclid(DAY_MILLIS) * DAY_MILLIS;
    (0..days.max(1))
        .rev()
        .filter_map(|back| Timestamp::from_unix_millis(today - back * DAY_MILLIS))
        .map(|start| DayShare {
            start,
            fresh_ms: 0,
            applicable_ms: 0,
        })
        .collect()
}

/// Adds the intervals of `histories` (only the controls in `columns`, only from `since` on) to
/// the day buckets; the last bucket ends at `end`.
pub fn accumulate(
    buckets: &mut [DayShare],
    end: Timestamp,
    histories: &[ControlHistory],
    columns: &[&str],
    since: Option<Timestamp>,
) {
    let end = end.unix_millis();
    let since = since.map_or(i64::MIN, |t| t.unix_millis());
    let starts: Vec<i64> = buckets.iter().map(|b| b.start.unix_millis()).collect();
    for h in histories
        .iter()
        .filter(|h| columns.contains(&h.control.as_str()))
    {
        for iv in &h.intervals {
            let fresh = match iv.status {
                ControlStatus::Fresh => true,
                ControlStatus::Stale | ControlStatus::Drifted | ControlStatus::Missing => false,
                ControlStatus::NotApplicable | ControlStatus::Excluded => continue,
            };
            let (a, b) = (iv.from.unix_millis().max(since), iv.to.unix_millis());
            for (k, bucket) in buckets.iter_mut().enumerate() {
                let lo = starts[k];
                let hi = starts.get(k + 1).copied().unwrap_or(end);
                let overlap = b.min(hi) - a.max(lo);
                if overlap > 0 {
                    bucket.applicable_ms += overlap;
                    if fresh {
                        bucket.fresh_ms += overlap;
                    }
                }
            }
        }
    }
}

/// The trends at one instant.
#[derive(Clone, Debug)]
pub struct Trend {
    /// When they were computed (the last day ends here).
    pub at: Timestamp,
    /// Every system together.
    pub all: Vec<DayShare>,
    /// Each system's own days, by system id.
    pub systems: BTreeMap<String, Vec<DayShare>>,
}

impl Trend {
    /// The ratio `days_ago` days before the last day (0: today).
    pub fn ratio_days_ago(days: &[DayShare], days_ago: usize) -> Option<f64> {
        let i = days.len().checked_sub(days_ago + 1)?;
        days.get(i)?.ratio()
    }
}

/// The last computed [`Trend`] with the ledger size and time slot it was computed for.
#[derive(Debug, Default)]
pub struct TrendCache(Mutex<Option<(u64, i64, Arc<Trend>)>>);

impl TrendCache {
    fn get(&self, size: u64, slot: i64) -> Option<Arc<Trend>> {
        let guard = self.0.lock().ok()?;
        match guard.as_ref() {
            Some((s, t, trend)) if *s == size && *t == slot => Some(trend.clone()),
            _ => None,
        }
    }

    fn put(&self, size: u64, slot: i64, trend: Arc<Trend>) {
        if let Ok(mut guard) = self.0.lock() {
            *guard = Some((size, slot, trend));
        }
    }
}

/// The grid's columns.
fn columns(state: &AppState) -> Vec<&str> {
    state
        .catalog
        .dashboard_controls()
        .into_iter()
        .map(|c| c.id.as_str())
        .collect()
}

/// One system's days up to `now`; `None` when the ledger has no record of it.
pub async fn system_days(
    state: &AppState,
    system: &str,
    now: Timestamp,
) -> Result<Option<Vec<DayShare>>, ApiError> {
    let mut days = day_buckets(now, TREND_DAYS);
    let Some(from) = days.first().map(|d| d.start) else {
        return Ok(None);
    };
    let (histories, first) =
        match crate::history::system_history_since(state, system, from, now).await {
            Ok(h) => h,
            Err(e) if e.status() == StatusCode::NOT_FOUND => return Ok(None),
            Err(e) => return Err(e),
        };
    accumulate(&mut days, now, &histories, &columns(state), first);
    Ok(Some(days))
}

/// The trends of every system as of now (reused from [`AppState::trend`] while the ledger size
/// and the five-minute slot are the same).
pub async fn dashboard_trend(state: &AppState) -> Result<Arc<Trend>, ApiError> {
    let now = Timestamp::now();
    let size = state.store.tree_size().await?;
    let slot = now.unix_millis().div_euclid(CACHE_MILLIS);
    if let Some(t) = state.trend.get(size, slot) {
        return Ok(t);
    }
    let mut all = day_buckets(now, TREND_DAYS);
    let mut systems = BTreeMap::new();
    for id in state.store.system_ids().await? {
        let Some(days) = system_days(state, &id, now).await? else {
            continue;
        };
        for (a, d) in all.iter_mut().zip(&days) {
            a.fresh_ms += d.fresh_ms;
            a.applicable_ms += d.applicable_ms;
        }
        systems.insert(id, days);
    }
    let trend = Arc::new(Trend {
        at: now,
        all,
        systems,
    });
    state.trend.put(size, slot, trend.clone());
    Ok(trend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aims_catalog::StatusInterval;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_utc(s).unwrap()
    }

    fn iv(from: &str, to: &str, status: ControlStatus) -> StatusInterval {
        StatusInterval {
            from: ts(from),
            to: ts(to),
            status,
            reason: String::new(),
        }
    }

    #[test]
    fn buckets_end_today_and_start_at_midnight() {
        let days = day_buckets(ts("2026-12-07T15:30:00Z"), 3);
        let starts: Vec<String> = days.iter().map(|d| d.start.to_string()).collect();
        assert_eq!(
            starts,
            [
                "2026-12-05T00:00:00.000Z",
                "2026-12-06T00:00:00.000Z",
                "2026-12-07T00:00:00.000Z"
            ]
        );
    }

    #[test]
    fn days_share_fresh_time_over_applicable_time() {
        let now = ts("2026-12-07T12:00:00Z");
        let mut days = day_buckets(now, 3);
        let h = vec![
            ControlHistory {
                control: "A.6.2.4".into(),
                fresh_ratio: 0.0,
                intervals: vec![
                    iv(
                        "2026-12-05T00:00:00Z",
                        "2026-12-06T06:00:00Z",
                        ControlStatus::Missing,
                    ),
                    iv(
                        "2026-12-06T06:00:00Z",
                        "2026-12-07T12:00:00Z",
                        ControlStatus::Fresh,
                    ),
                ],
            },
            ControlHistory {
                control: "A.6.1.2".into(),
                fresh_ratio: 1.0,
                intervals: vec![iv(
                    "2026-12-05T00:00:00Z",
                    "2026-12-07T12:00:00Z",
                    ControlStatus::NotApplicable,
                )],
            },
            // Not a grid column: left out.
            ControlHistory {
                control: "A.9.4".into(),
                fresh_ratio: 0.0,
                intervals: vec![iv(
                    "2026-12-05T00:00:00Z",
                    "2026-12-07T12:00:00Z",
                    ControlStatus::Missing,
                )],
            },
        ];
        // Before 2026-12-05T12:00 the system was not watched yet.
        accumulate(
            &mut days,
            now,
            &h,
            &["A.6.2.4", "A.6.1.2"],
            Some(ts("2026-12-05T12:00:00Z")),
        );
        assert_eq!(days[0].applicable_ms, 12 * 3_600_000);
        assert_eq!(days[0].ratio(), Some(0.0));
        assert_eq!(days[1].ratio(), Some(0.75));
        assert_eq!(days[2].applicable_ms, 12 * 3_600_000, "today ends now");
        assert_eq!(days[2].ratio(), Some(1.0));
        assert_eq!(Trend::ratio_days_ago(&days, 0), Some(1.0));
        assert_eq!(Trend::ratio_days_ago(&days, 1), Some(0.75));
        assert_eq!(Trend::ratio_days_ago(&days, 5), None);
        let empty = day_buckets(now, 2);
        assert_eq!(empty[0].ratio(), None, "nothing applicable");
    }
}
