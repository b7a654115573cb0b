//! The notification payload: one [`Notification`] per event and delivery, serialised as
//!
//! ```json
//! {"event":"finding.opened","delivery":"<id>","sent_at":"<RFC 3339 UTC>","finding":{…}}
//! {"event":"source.silent","delivery":"<id>","sent_at":"…","source":{…}}
//! {"event":"test","delivery":"<id>","sent_at":"…"}
//! ```
//!
//! [`Notification::body_bytes`] are the exact bytes a webhook receives and the HMAC covers. The
//! outbox keeps the notification (or these bytes) as first built, so every retry sends the same
//! bytes with the same delivery id. Optional fields that are absent are left out of the JSON
//! rather than sent as `null`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A finding appeared (a control drifted).
    FindingOpened,
    /// A finding is gone (fresh evidence arrived, the artifact came back…).
    FindingResolved,
    /// An admin accepted the risk of a finding until a date.
    FindingAcknowledged,
    /// The freshness window of a control's newest evidence closes within `warn_days`.
    EvidenceExpiring,
    /// An agent's source stopped reporting.
    SourceSilent,
    /// `aims-server notify test`: checks a sink end to end.
    Test,
}

impl EventType {
    /// Every event type, in documentation order.
    pub const ALL: [Self; 6] = [
        Self::FindingOpened,
        Self::FindingResolved,
        Self::FindingAcknowledged,
        Self::EvidenceExpiring,
        Self::SourceSilent,
        Self::Test,
    ];

    /// The wire name (`finding.opened`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FindingOpened => "finding.opened",
            Self::FindingResolved => "finding.resolved",
            Self::FindingAcknowledged => "finding.acknowledged",
            Self::EvidenceExpiring => "evidence.expiring",
            Self::SourceSilent => "source.silent",
            Self::Test => "test",
        }
    }

    /// The wire name with spaces, for people (`finding opened`).
    pub fn human(self) -> &'static str {
        match self {
            Self::FindingOpened => "finding opened",
            Self::FindingResolved => "finding resolved",
            Self::FindingAcknowledged => "finding acknowledged",
            Self::EvidenceExpiring => "evidence expiring",
            Self::SourceSilent => "source silent",
            Self::Test => "test notification",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of [`EventType::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown event {0:?} (expected one of finding.opened, finding.resolved, finding.acknowledged, evidence.expiring, source.silent, test)"
)]
pub struct UnknownEvent(pub String);

impl FromStr for EventType {
    type Err = UnknownEvent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| UnknownEvent(s.to_owned()))
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Absolute links a person follows from a notification (the `public_url` setting is the base).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    /// The dashboard page of the finding's control (or system, or `/sources`).
    pub dashboard: String,
    /// `/evidence/{record_id}` for each evidence record, in the finding's order.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// `/v1/evidence/{record_id}/proof` (the inclusion proof) for each evidence record.
    #[serde(default)]
    pub proofs: Vec<String>,
}

impl Links {
    /// The links of a finding: the dashboard page of its first control
    /// (`/systems/{system}/controls/{control}`, or `/systems/{system}` without controls), and
    /// the evidence and proof URL of each record. Path segments are percent-encoded.
    pub fn for_finding(
        public_url: &str,
        system: &str,
        controls: &[String],
        evidence_ids: &[String],
    ) -> Self {
        let base = public_url.trim_end_matches('/');
        let dashboard = match controls.first() {
            Some(c) => format!("{base}/systems/{}/controls/{}", segment(system), segment(c)),
            None => format!("{base}/systems/{}", segment(system)),
        };
        Self {
            dashboard,
            evidence: evidence_ids
                .iter()
                .map(|id| format!("{base}/evidence/{}", segment(id)))
                .collect(),
            proofs: evidence_ids
                .iter()
                .map(|id| format!("{base}/v1/evidence/{}/proof", segment(id)))
                .collect(),
        }
    }

    /// The links of a source event: the `/sources` page.
    pub fn for_source(public_url: &str) -> Self {
        Self {
            dashboard: format!("{}/sources", public_url.trim_end_matches('/')),
            ..Self::default()
        }
    }
}

/// Percent-encodes one URL path segment (everything but RFC 3986 unreserved characters).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A finding event's subject (`finding.*`, `evidence.expiring`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FindingPayload {
    /// The finding's deterministic id.
    pub id: String,
    /// `changed`, `stale`, `missing`, `gone`, `inconsistent`, `failed`, `expiring`, …
    pub kind: String,
    /// The AI system.
    pub system: String,
    /// The controls affected (`A.6.2.6`, …).
    #[serde(default)]
    pub controls: Vec<String>,
    /// Since when the condition holds (RFC 3339).
    pub since: String,
    /// One sentence for a person.
    pub message: String,
    /// The evidence record ids the finding is about.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// The acknowledgement in force (`{"by","reason","at","expires_at"}`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<serde_json::Value>,
    /// `evidence.expiring`: when the freshness window closes (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Who owns the artifact (GitHub logins from its CODEOWNERS evidence), when known: the
    /// GitHub sink assigns them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
    /// Dashboard, evidence and proof links.
    pub links: Links,
}

/// A source event's subject (`source.silent`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourcePayload {
    /// The agent's name.
    pub agent: String,
    /// The source's id within the agent.
    pub source: String,
    /// The system the source reports for, when it reports for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Since when nothing arrived (RFC 3339).
    pub silent_since: String,
    /// The last report, if there ever was one (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// One sentence for a person.
    pub message: String,
    /// The `/sources` link.
    pub links: Links,
}

/// One notification as delivered (see the module docs for the JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// What happened.
    pub event: EventType,
    /// The delivery id: the same on every retry (`X-Aims-Delivery`).
    pub delivery: String,
    /// When the notification was built (RFC 3339 UTC); it does not change on retries.
    pub sent_at: String,
    /// The finding, for `finding.*` and `evidence.expiring`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<FindingPayload>,
    /// The source, for `source.silent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourcePayload>,
}

impl Notification {
    /// A finding event.
    pub fn finding(event: EventType, delivery: String, sent_at: String, f: FindingPayload) -> Self {
        Self {
            event,
            delivery,
            sent_at,
            finding: Some(f),
            source: None,
        }
    }

    /// A source event.
    pub fn source(event: EventType, delivery: String, sent_at: String, s: SourcePayload) -> Self {
        Self {
            event,
            delivery,
            sent_at,
            finding: None,
            source: Some(s),
        }
    }

    /// The `test` event of `aims-server notify test`.
    pub fn test(delivery: String, sent_at: String) -> Self {
        Self {
            event: EventType::Test,
            delivery,
            sent_at,
            finding: None,
            source: None,
        }
    }

    /// The system the notification is about, for the sinks' `systems` filter.
    pub fn system(&self) -> Option<&str> {
        match (&self.finding, &self.source) {
            (Some(f), _) => Some(f.system.as_str()),
            (None, Some(s)) => s.system.as_deref(),
            (None, None) => None,
        }
    }

    /// The exact bytes sent to a webhook and signed: compact JSON, fields in declaration order.
    pub fn body_bytes(&self) -> Vec<u8> {
        // Strings, vectors and JSON values only: serialising cannot fail (serde_json only fails
        // on non-string map keys or a failing custom `Serialize`, and there are none).
        serde_json::to_vec(self).unwrap_or_else(|e| {
            tracing::error!(error = %e, "serialising a notification failed");
            Vec::new()
        })
    }

    /// A one-line summary for people: Slack's header and the GitHub issue title, e.g.
    /// `finding opened: changed on fraud-scoring (A.6.2.6, A.7.4)`.
    pub fn subject(&self) -> String {
        let what = self.event.human();
        if let Some(f) = &self.finding {
            let mut s = format!("{what}: {}", finding_summary(f));
            if self.event == EventType::EvidenceExpiring
                && let Some(at) = &f.expires_at
            {
                s.push_str(&format!(", window closes {at}"));
            }
            return s;
        }
        if let Some(src) = &self.source {
            let system = src
                .system
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            return format!("{what}: {}/{}{system}", src.agent, src.source);
        }
        format!("{what} from aims-server")
    }

    /// The sentence for people: the payload's `message`, or a fixed one for `test`.
    pub fn message(&self) -> &str {
        match (&self.finding, &self.source) {
            (Some(f), _) => &f.message,
            (None, Some(s)) => &s.message,
            (None, None) => "This is a test notification: the sink is configured correctly.",
        }
    }

    /// The payload's links, if any.
    pub fn links(&self) -> Option<&Links> {
        match (&self.finding, &self.source) {
            (Some(f), _) => Some(&f.links),
            (None, Some(s)) => Some(&s.links),
            (None, None) => None,
        }
    }
}

/// `<kind> on <system> (<controls>)`: a finding in a few words.
pub(crate) fn finding_summary(f: &FindingPayload) -> String {
    if f.controls.is_empty() {
        format!("{} on {}", f.kind, f.system)
    } else {
        format!("{} on {} ({})", f.kind, f.system, f.controls.join(", "))
    }
}

/// A timestamp as the payload writes it: RFC 3339, UTC, whole seconds, `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A fresh random delivery id (32 lowercase hex characters). The outbox assigns it once per
/// event and sink and keeps it for every retry.
pub fn new_delivery_id() -> String {
    let mut b = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut b) {
        // No OS randomness: fall back to the clock, still unique per nanosecond and process.
        tracing::warn!(error = %e, "no OS randomness for a delivery id; using the clock");
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        b[..8].copy_from_slice(&nanos.to_le_bytes());
        b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding() -> FindingPayload {
        let controls = vec!["A.6.2.6".to_owned(), "A.7.4".to_owned()];
        let evidence = vec!["rec 1".to_owned()];
        FindingPayload {
            id: "f1".into(),
            kind: "changed".into(),
            system: "fraud scoring".into(),
            links: Links::for_finding(
                "https://aims.example/",
                "fraud scoring",
                &controls,
                &evidence,
            ),
            controls,
            since: "2026-01-02T03:04:05Z".into(),
            message: "model.pkl changed after its validation".into(),
            evidence,
            ..FindingPayload::default()
        }
    }

    #[test]
    fn event_names_round_trip() {
        for e in EventType::ALL {
            assert_eq!(e.as_str().parse::<EventType>(), Ok(e));
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(json, format!("\"{}\"", e.as_str()));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), e);
        }
        let err = "finding.closed".parse::<EventType>().unwrap_err();
        assert!(err.to_string().contains("finding.closed"));
        assert!(serde_json::from_str::<EventType>("\"nope\"").is_err());
    }

    #[test]
    fn links_are_absolute_and_encoded() {
        let f = finding();
        assert_eq!(
            f.links.dashboard,
            "https://aims.example/systems/fraud%20scoring/controls/A.6.2.6"
        );
        assert_eq!(f.links.evidence, ["https://aims.example/evidence/rec%201"]);
        assert_eq!(
            f.links.proofs,
            ["https://aims.example/v1/evidence/rec%201/proof"]
        );
        let none = Links::for_finding("http://h:8080/aims", "s/1", &[], &[]);
        assert_eq!(none.dashboard, "http://h:8080/aims/systems/s%2F1");
        assert_eq!(Links::for_source("http://h/").dashboard, "http://h/sources");
    }

    #[test]
    fn wire_shape() {
        let n = Notification::finding(
            EventType::FindingOpened,
            "d1".into(),
            "2026-01-02T03:04:05Z".into(),
            finding(),
        );
        let v: serde_json::Value = serde_json::from_slice(&n.body_bytes()).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["delivery", "event", "finding", "sent_at"]);
        assert_eq!(v["event"], "finding.opened");
        assert_eq!(v["finding"]["controls"][1], "A.7.4");
        assert!(v["finding"].get("acknowledged").is_none());
        assert!(v["finding"].get("owners").is_none());
        assert!(v.get("source").is_none());
        let text = String::from_utf8(n.body_bytes()).unwrap();
        assert!(text.starts_with(r#"{"event":"finding.opened","delivery":"d1","sent_at":"#));
        let back: Notification = serde_json::from_slice(&n.body_bytes()).unwrap();
        assert_eq!(back, n);
        assert_eq!(back.body_bytes(), n.body_bytes());
        assert_eq!(
            n.subject(),
            "finding opened: changed on fraud scoring (A.6.2.6, A.7.4)"
        );

        let t = Notification::test("d2".into(), rfc3339(Utc::now()));
        let v: serde_json::Value = serde_json::from_slice(&t.body_bytes()).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 3);
        assert_eq!(t.subject(), "test notification from aims-server");

        let s = Notification::source(
            EventType::SourceSilent,
            "d3".into(),
            "2026-01-02T03:04:05Z".into(),
            SourcePayload {
                agent: "edge-1".into(),
                source: "gh".into(),
                silent_since: "2026-01-01T00:00:00Z".into(),
                message: "no report for 25 h".into(),
                links: Links::for_source("http://h"),
                ..SourcePayload::default()
            },
        );
        assert_eq!(s.subject(), "source silent: edge-1/gh");
        assert_eq!(s.system(), None);
    }

    #[test]
    fn delivery_ids_are_random_hex() {
        let a = new_delivery_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_delivery_id());
        assert_eq!(
            rfc3339(DateTime::from_timestamp(0, 5).unwrap()),
            "1970-01-01T00:00:00Z"
        );
    }
}
