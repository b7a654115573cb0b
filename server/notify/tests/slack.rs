//! The Slack sink against a real receiver on 127.0.0.1: the message content, Slack's error
//! answers, and the webhook URL (a secret) kept out of reasons.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers panic by design

mod common;

use std::time::Duration;

use aims_notify::{EventType, Outcome};
use common::receiver::{Receiver, Reply};
use common::{deliverer, finding, silent, sink};

const HOOK_PATH: &str = "/services/T0001/B0002/xoxsecretpart";

#[tokio::test]
async fn posts_the_message() {
    let r = Receiver::start("").await;
    let s = sink(&format!("- type: slack\n  url: {}{HOOK_PATH}\n", r.url));
    let d = deliverer(Duration::from_secs(5));
    let out = d
        .deliver(&s, &finding(EventType::FindingOpened, "dlv-1"))
        .await;
    assert_eq!(
        out,
        Outcome::Delivered {
            detail: "HTTP 200".into()
        }
    );
    let got = r.received();
    assert_eq!(got[0].path, HOOK_PATH);
    assert_eq!(got[0].header("content-type"), "application/json");
    assert_eq!(got[0].header("x-aims-signature"), "");
    let m: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    let text = m["text"].as_str().unwrap();
    assert!(text.starts_with("finding opened: changed on fraud-scoring (A.6.2.6, A.7.4)\n"));
    assert!(text.contains("models/fraud.pkl changed"));
    let blocks = m["blocks"].to_string();
    assert!(blocks.contains("*System*\\nfraud-scoring"), "{blocks}");
    assert!(blocks.contains("|Dashboard>"));
    assert!(blocks.contains("https://aims.example/v1/evidence/rec-model-v7/proof|proof>"));

    let out = d.deliver(&s, &silent("dlv-2")).await;
    assert!(matches!(out, Outcome::Delivered { .. }));
    let m: serde_json::Value = serde_json::from_slice(&r.received()[1].body).unwrap();
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .starts_with("source silent: edge-1/mlflow-prod")
    );
    assert!(
        m["blocks"]
            .to_string()
            .contains("https://aims.example/sources|Dashboard>")
    );
}

#[tokio::test]
async fn slack_errors() {
    let r = Receiver::start("").await;
    let s = sink(&format!("- type: slack\n  url: {}{HOOK_PATH}\n", r.url));
    let d = deliverer(Duration::from_secs(5));
    let n = finding(EventType::FindingOpened, "dlv-1");

    r.push(Reply::With(
        429,
        vec![("retry-after", "30".into())],
        "rate_limited",
    ));
    let out = d.deliver(&s, &n).await;
    assert_eq!(
        out,
        Outcome::Retry {
            after: Some(Duration::from_secs(30)),
            reason: "HTTP 429: rate_limited".into()
        }
    );
    r.push(Reply::With(404, Vec::new(), "no_service"));
    let out = d.deliver(&s, &n).await;
    assert_eq!(
        out,
        Outcome::Failed {
            reason: "HTTP 404: no_service".into()
        }
    );
    r.push(Reply::With(410, Vec::new(), "channel_is_archived"));
    let out = d.deliver(&s, &n).await;
    assert!(matches!(out, Outcome::Failed { .. }));
}

#[tokio::test]
async fn the_url_stays_secret() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = sink(&format!(
        "- type: slack\n  url: http://127.0.0.1:{port}{HOOK_PATH}\n"
    ));
    assert!(!format!("{s:?}").contains("xoxsecretpart"));
    let out = deliverer(Duration::from_secs(5))
        .deliver(&s, &finding(EventType::FindingOpened, "dlv-1"))
        .await;
    let Outcome::Retry { reason, .. } = &out else {
        panic!("{out:?}")
    };
    assert!(!reason.contains("xoxsecretpart"), "{reason}");
}
