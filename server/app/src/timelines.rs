//! Each system's history, materialised (issue 13): the dashboard's history strips and trends,
//! `GET /v1/systems/{id}/history` and the period report read a [`Timeline`] held in memory
//! instead of replaying the system's ledger entries per request.
//!
//! A timeline changes only when (a) an entry of the system (or a confirmation of one of its
//! sources) arrives, or (b) the clock passes its next change point (a window closing, an
//! acceptance expiring). Ingest marks (a) ([`Timelines::mark_stale`], beside `assess::mark_dirty`);
//! a periodic re-assessment that sees a system's evidence change under it (another replica
//! ingested) marks it too ([`Timelines::observe`]). A reader then advances the timeline from the
//! earliest receipt it has not seen, or from the change point the clock passed: states before
//! that instant are final and kept, so the work is proportional to what changed, not to the
//! system's history. Between change points a read is a clip of memory.
//!
//! Timelines are derived data: rebuilt from the ledger on start (in the background, after the
//! start-up assessment) and on demand, never persisted, so there is no schema to migrate and no
//! way for them to disagree with the ledger for longer than one read.

use std::collections::HashMap;
use std::sync::Arc;

use aims_catalog::Timeline;
use aims_model::Timestamp;

use crate::AppState;
use crate::error::ApiError;

/// What a periodic re-assessment saw of a system's evidence: (records, newest leaf, newest
/// confirmation). A change means entries arrived that this process did not ingest.
pub type Fingerprint = (usize, Option<u64>, Option<Timestamp>);

#[derive(Debug)]
struct Held {
    timeline: Arc<Timeline>,
    /// The newest leaf (record or confirmation) the timeline has seen.
    last_leaf: Option<u64>,
    /// The system's generation when its entries were read for this timeline.
    generation: u64,
    /// The last [`Fingerprint`] observed.
    seen: Option<Fingerprint>,
}

#[derive(Debug, Default)]
struct Inner {
    held: HashMap<String, Held>,
    /// Per system, how many times entries were known to arrive: a timeline read at an older
    /// generation is stale (also when entries arrive while it is being advanced).
    generations: HashMap<String, u64>,
}

/// The timelines of every system read so far.
#[derive(Debug, Default)]
pub struct Timelines {
    inner: std::sync::Mutex<Inner>,
    /// One advance at a time (reads that need none do not wait).
    advancing: tokio::sync::Mutex<()>,
}

impl Timelines {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The data is a cache of the ledger: a panic elsewhere leaves it usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Entries of `systems` arrived (this process ingested them).
    pub fn mark_stale(&self, systems: &[String]) {
        let mut inner = self.lock();
        for s in systems {
            *inner.generations.entry(s.clone()).or_default() += 1;
        }
    }

    /// A re-assessment saw `system`'s evidence as `fp`; a change since the last one marks the
    /// timeline stale.
    pub fn observe(&self, system: &str, fp: Fingerprint) {
        let mut inner = self.lock();
        let Some(h) = inner.held.get_mut(system) else {
            return;
        };
        let changed = h.seen.is_some_and(|s| s != fp);
        h.seen = Some(fp);
        if changed {
            *inner.generations.entry(system.to_owned()).or_default() += 1;
        }
    }

    fn generation(inner: &Inner, system: &str) -> u64 {
        inner.generations.get(system).copied().unwrap_or_default()
    }

    fn current(&self, system: &str, now: Timestamp) -> Option<Arc<Timeline>> {
        let inner = self.lock();
        let h = inner.held.get(system)?;
        (h.generation == Self::generation(&inner, system) && h.timeline.covers(now))
            .then(|| h.timeline.clone())
    }

    /// How many systems and state changes are held (for the benchmarks).
    pub fn size(&self) -> (usize, usize) {
        let inner = self.lock();
        (
            inner.held.len(),
            inner.held.values().map(|x| x.timeline.len()).sum(),
        )
    }
}

/// The timeline of `system`, current as of `now`; `None` when the ledger has no record of it.
pub async fn timeline(
    state: &AppState,
    system: &str,
    now: Timestamp,
) -> Result<Option<Arc<Timeline>>, ApiError> {
    let timelines = &state.timelines;
    if let Some(t) = timelines.current(system, now) {
        return Ok(Some(t));
    }
    let _one = timelines.advancing.lock().await;
    if let Some(t) = timelines.current(system, now) {
        return Ok(Some(t));
    }
    let (previous, generation) = {
        let inner = timelines.lock();
        let previous = inner
            .held
            .get(system)
            .map(|h| (h.timeline.clone(), h.last_leaf, h.seen));
        (previous, Timelines::generation(&inner, system))
    };
    let Some((replay, receipts)) = crate::history::system_ledger(state, system).await? else {
        timelines.lock().held.remove(system);
        return Ok(None);
    };
    let last_leaf = receipts.iter().map(|(leaf, _)| *leaf).max();
    let catalog = state.catalog.clone();
    let sys = system.to_owned();
    let (t, seen) = tokio::task::spawn_blocking(move || match previous {
        Some((timeline, seen_leaf, seen)) => {
            // From the earliest receipt not seen, and from the change point the clock passed;
            // with neither, only `now` is evaluated (it can only repeat the last state).
            let unseen = receipts
                .iter()
                .filter(|(leaf, _)| seen_leaf.is_none_or(|s| *leaf > s))
                .map(|(_, r)| *r)
                .min();
            let passed = timeline.next_change().filter(|n| *n <= now);
            let since = unseen.into_iter().chain(passed).min().unwrap_or(now);
            let mut t = Arc::unwrap_or_clone(timeline);
            t.advance(&catalog, &replay, since, now);
            (t, seen)
        }
        None => (Timeline::build(&catalog, &replay, &sys, now), None),
    })
    .await
    .map_err(ApiError::internal)?;
    let t = Arc::new(t);
    timelines.lock().held.insert(
        system.to_owned(),
        Held {
            timeline: t.clone(),
            last_leaf,
            generation,
            seen,
        },
    );
    Ok(Some(t))
}

/// Builds the timeline of every system (the server does this once after its start-up
/// assessment, so the first dashboard read does not); returns how many.
pub async fn warm(state: &AppState) -> Result<usize, ApiError> {
    let now = Timestamp::now();
    let mut n = 0;
    for id in state.store.system_ids().await? {
        if timeline(state, &id, now).await?.is_some() {
            n += 1;
        }
    }
    Ok(n)
}
