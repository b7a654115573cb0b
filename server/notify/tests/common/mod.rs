//! Shared by the integration tests: notifications to send, sinks built from YAML as the
//! server reads them, a deliverer with short limits, and the two real HTTP servers on
//! 127.0.0.1:0 ([`receiver::Receiver`], a scriptable webhook/Slack receiver that checks
//! signatures, and [`fake_github::FakeGithub`], the issues API with GitHub's recorded shapes).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

pub mod fake_github;
pub mod receiver;

use std::time::Duration;

use aims_notify::{
    Deliverer, DelivererOptions, EventType, FindingPayload, Links, Notification, Sink, SinkConfig,
    SourcePayload, build_sinks,
};

pub const PUBLIC_URL: &str = "https://aims.example";
pub const FINDING_ID: &str = "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6";

/// A finding event with two controls and two evidence records.
pub fn finding(event: EventType, delivery: &str) -> Notification {
    let controls = vec!["A.6.2.6".to_owned(), "A.7.4".to_owned()];
    let evidence = vec!["rec-model-v7".to_owned(), "rec-validation-v6".to_owned()];
    Notification::finding(
        event,
        delivery.to_owned(),
        "2026-03-01T10:00:00Z".to_owned(),
        FindingPayload {
            id: FINDING_ID.to_owned(),
            kind: "changed".to_owned(),
            system: "fraud-scoring".to_owned(),
            links: Links::for_finding(PUBLIC_URL, "fraud-scoring", &controls, &evidence),
            controls,
            since: "2026-03-01T09:58:12Z".to_owned(),
            message: "models/fraud.pkl changed after its validation report".to_owned(),
            evidence,
            acknowledged: (event == EventType::FindingAcknowledged).then(|| {
                serde_json::json!({"by": "carol", "reason": "retraining this week",
                    "at": "2026-03-01T11:00:00Z", "expires_at": "2026-03-08T00:00:00Z"})
            }),
            expires_at: (event == EventType::EvidenceExpiring)
                .then(|| "2026-03-10T00:00:00Z".to_owned()),
            owners: vec!["@alice".to_owned(), "@acme/ml-team".to_owned()],
        },
    )
}

/// A `source.silent` event.
pub fn silent(delivery: &str) -> Notification {
    Notification::source(
        EventType::SourceSilent,
        delivery.to_owned(),
        "2026-03-01T10:00:00Z".to_owned(),
        SourcePayload {
            agent: "edge-1".to_owned(),
            source: "mlflow-prod".to_owned(),
            system: Some("fraud-scoring".to_owned()),
            silent_since: "2026-02-28T08:00:00Z".to_owned(),
            last_seen: Some("2026-02-28T07:55:00Z".to_owned()),
            message: "no report for 26 h (expected every 15 min)".to_owned(),
            links: Links::for_source(PUBLIC_URL),
        },
    )
}

/// Sink settings parsed from YAML, as the server's `config` crate hands them over.
pub fn configs(yaml: &str) -> Vec<SinkConfig> {
    serde_yaml::from_str(yaml).unwrap()
}

/// The one sink of `yaml`.
pub fn sink(yaml: &str) -> Sink {
    build_sinks(&configs(yaml)).unwrap().remove(0)
}

/// A deliverer with a total request time limit of `timeout`.
pub fn deliverer(timeout: Duration) -> Deliverer {
    Deliverer::new(DelivererOptions {
        timeout,
        ..DelivererOptions::default()
    })
    .unwrap()
}
