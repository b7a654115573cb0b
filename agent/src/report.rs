//! What a run did, per source and as a whole: the values `once` prints as summary lines and
//! the metrics count ([`crate::metrics::record_poll`]). Plain data, so the runner and the metrics
//! both depend on it and not on each other.

use aims_model::Timestamp;

use crate::shipper::ShipReport;

/// One source's part of a [`RunReport`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceReport {
    /// The source id.
    pub id: String,
    /// Artifacts listed.
    pub listed: usize,
    /// Artifacts fetched and hashed (changed or new).
    pub fetched: usize,
    /// Artifacts unchanged since the cursor.
    pub unchanged: usize,
    /// Artifacts gone since the cursor.
    pub gone: usize,
    /// Bytes hashed while fetching.
    pub bytes_hashed: u64,
    /// Records written to the spool.
    pub spooled: usize,
    /// Records of this source acknowledged by the server during this run.
    pub shipped: usize,
    /// Artifacts a confirmation sent during this run covered (0 when none was due).
    pub confirmed: usize,
    /// When the poll ran.
    pub polled_at: Option<Timestamp>,
    /// Problems; non-empty means the source failed (fully or partly).
    pub errors: Vec<String>,
}

impl SourceReport {
    pub(crate) fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            ..Self::default()
        }
    }

    /// The report of a source that did not poll at all: `error` says why, stamped now.
    pub(crate) fn failed_now(id: &str, error: String) -> Self {
        let mut r = Self::new(id);
        r.errors.push(error);
        r.polled_at = Some(Timestamp::now());
        r
    }

    /// True when the source reported any error.
    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// What [`crate::run_once`] did.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    /// One entry per configured source, in configuration order.
    pub sources: Vec<SourceReport>,
    /// The shipping pass.
    pub ship: ShipReport,
}

impl RunReport {
    /// True when every source polled cleanly and every spooled record was acknowledged.
    pub fn success(&self) -> bool {
        self.sources.iter().all(|s| !s.failed()) && self.ship.all_delivered()
    }
}

/// Per-source one-line summary, e.g. `ml-repo: 12 listed, 3 fetched, 9 unchanged, 0 gone, 3 shipped`.
pub fn summary_line(s: &SourceReport) -> String {
    let mut line = format!(
        "{}: {} listed, {} fetched, {} unchanged, {} gone, {} shipped",
        s.id, s.listed, s.fetched, s.unchanged, s.gone, s.shipped
    );
    if s.confirmed > 0 {
        line.push_str(&format!(", {} confirmed", s.confirmed));
    }
    if s.spooled != s.shipped {
        line.push_str(&format!(" ({} spooled)", s.spooled));
    }
    if !s.errors.is_empty() {
        line.push_str(&format!(
            ", {} errors: {}",
            s.errors.len(),
            s.errors.join("; ")
        ));
    }
    line
}
