//! The webhook sink against a real receiver on 127.0.0.1 that verifies signatures: headers and
//! bytes, retries with the same delivery id, `Retry-After`, refusals, redirects, and answers
//! that are huge, endless, slow or never come.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers panic by design

mod common;

use std::time::{Duration, Instant};

use aims_notify::{EventType, Notification, Outcome, Sink, next_attempt, verify_signature};
use common::receiver::{Receiver, Reply};
use common::{deliverer, finding, sink};

const SECRET: &str = "whsec_5up3r-s3cr3t";

fn webhook(r: &Receiver) -> Sink {
    sink(&format!(
        "- type: webhook\n  url: {}/hooks/aims\n  secret: {SECRET}\n",
        r.url
    ))
}

#[tokio::test]
async fn signed_delivery_verifies() {
    let r = Receiver::start(SECRET).await;
    let d = deliverer(Duration::from_secs(5));
    let n = finding(EventType::FindingOpened, "dlv-0001");
    let out = d.deliver(&webhook(&r), &n).await;
    assert_eq!(
        out,
        Outcome::Delivered {
            detail: "HTTP 200".into()
        }
    );

    let got = r.received();
    assert_eq!(got.len(), 1);
    let g = &got[0];
    assert_eq!(g.method, "POST");
    assert_eq!(g.path, "/hooks/aims");
    assert!(g.signature_valid, "the receiver's own HMAC check failed");
    assert_eq!(g.body.as_ref(), n.body_bytes().as_slice());
    assert!(verify_signature(
        SECRET.as_bytes(),
        &g.body,
        g.header("x-aims-signature")
    ));
    assert!(g.header("x-aims-signature").starts_with("sha256="));
    assert_eq!(g.header("x-aims-signature").len(), "sha256=".len() + 64);
    assert_eq!(g.header("x-aims-delivery"), "dlv-0001");
    assert_eq!(g.header("x-aims-event"), "finding.opened");
    assert_eq!(g.header("content-type"), "application/json");
    assert!(g.header("user-agent").starts_with("aims-server/"));

    let v: serde_json::Value = serde_json::from_slice(&g.body).unwrap();
    assert_eq!(v["event"], "finding.opened");
    assert_eq!(v["delivery"], "dlv-0001");
    assert_eq!(v["finding"]["system"], "fraud-scoring");
    assert_eq!(
        v["finding"]["links"]["proofs"][0],
        "https://aims.example/v1/evidence/rec-model-v7/proof"
    );
}

#[tokio::test]
async fn wrong_secret_does_not_verify() {
    let r = Receiver::start("the-receivers-secret").await;
    let d = deliverer(Duration::from_secs(5));
    let out = d
        .deliver(
            &webhook(&r),
            &Notification::test("t1".into(), "2026-03-01T10:00:00Z".into()),
        )
        .await;
    assert!(matches!(out, Outcome::Delivered { .. }));
    assert!(!r.received()[0].signature_valid);
}

#[tokio::test]
async fn retry_keeps_delivery_id_and_bytes() {
    let r = Receiver::start(SECRET).await;
    r.push(Reply::With(500, Vec::new(), "database is down"));
    let d = deliverer(Duration::from_secs(5));
    let s = webhook(&r);
    let n = finding(EventType::FindingResolved, "dlv-retry");
    let first = d.deliver(&s, &n).await;
    let Outcome::Retry { after, reason } = &first else {
        panic!("{first:?}")
    };
    assert_eq!(*after, None);
    assert!(
        reason.contains("HTTP 500") && reason.contains("database is down"),
        "{reason}"
    );
    let second = d.deliver(&s, &n).await;
    assert!(matches!(second, Outcome::Delivered { .. }), "{second:?}");

    let got = r.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].header("x-aims-delivery"), "dlv-retry");
    assert_eq!(got[1].header("x-aims-delivery"), "dlv-retry");
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(
        got[0].header("x-aims-signature"),
        got[1].header("x-aims-signature")
    );
    assert!(got.iter().all(|g| g.signature_valid));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let r = Receiver::start(SECRET).await;
    let d = deliverer(Duration::from_secs(5));
    let s = webhook(&r);
    let n = finding(EventType::FindingOpened, "dlv-ra");

    r.push(Reply::With(503, vec![("retry-after", "120".into())], ""));
    let out = d.deliver(&s, &n).await;
    let Outcome::Retry { after, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(after, Some(Duration::from_secs(120)));
    assert!(next_attempt(1, after) >= Duration::from_secs(120));

    let date = (chrono::Utc::now() + chrono::Duration::seconds(300)).to_rfc2822();
    let date = date.replace("+0000", "GMT");
    r.push(Reply::With(429, vec![("retry-after", date)], "slow down"));
    let out = d.deliver(&s, &n).await;
    let Outcome::Retry {
        after: Some(after), ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert!(
        after > Duration::from_secs(290) && after <= Duration::from_secs(300),
        "{after:?}"
    );

    // A day is capped at an hour.
    r.push(Reply::With(503, vec![("retry-after", "86400".into())], ""));
    let out = d.deliver(&s, &n).await;
    assert!(matches!(out, Outcome::Retry { after: Some(a), .. } if a == Duration::from_secs(3600)));
}

#[tokio::test]
async fn client_errors_fail_and_transient_ones_retry() {
    let r = Receiver::start(SECRET).await;
    let d = deliverer(Duration::from_secs(5));
    let s = webhook(&r);
    let n = finding(EventType::FindingOpened, "dlv-4xx");
    for status in [400, 401, 404, 410, 413, 422] {
        r.push(Reply::With(status, Vec::new(), "no thanks"));
        let out = d.deliver(&s, &n).await;
        let Outcome::Failed { reason } = &out else {
            panic!("{status}: {out:?}")
        };
        assert!(
            reason.starts_with(&format!("HTTP {status}: no thanks")),
            "{reason}"
        );
    }
    for status in [408, 425, 429, 500, 502, 503, 504] {
        r.push(Reply::status(status));
        let out = d.deliver(&s, &n).await;
        assert!(matches!(out, Outcome::Retry { .. }), "{status}: {out:?}");
    }
    for status in [200, 201, 202, 204] {
        r.push(Reply::status(status));
        let out = d.deliver(&s, &n).await;
        assert_eq!(
            out,
            Outcome::Delivered {
                detail: format!("HTTP {status}")
            }
        );
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let r = Receiver::start(SECRET).await;
    let elsewhere = Receiver::start(SECRET).await;
    let d = deliverer(Duration::from_secs(5));
    let s = webhook(&r);
    for status in [301, 302, 307, 308] {
        r.push(Reply::With(
            status,
            vec![("location", format!("{}/stolen", elsewhere.url))],
            "",
        ));
        let out = d
            .deliver(&s, &finding(EventType::FindingOpened, "dlv-3xx"))
            .await;
        let Outcome::Failed { reason } = &out else {
            panic!("{status}: {out:?}")
        };
        assert!(reason.contains(&format!("HTTP {status}")), "{reason}");
        assert!(
            reason.contains("/stolen") && reason.contains("not followed"),
            "{reason}"
        );
    }
    assert_eq!(r.received().len(), 4);
    assert!(
        elsewhere.received().is_empty(),
        "the redirect target got a request"
    );
}

#[tokio::test]
async fn huge_answers_are_cut() {
    let r = Receiver::start(SECRET).await;
    let d = deliverer(Duration::from_secs(5));
    let s = webhook(&r);
    let n = finding(EventType::FindingOpened, "dlv-big");

    r.push(Reply::Big(500, 10 * 1024 * 1024));
    let started = Instant::now();
    let out = d.deliver(&s, &n).await;
    let Outcome::Retry { reason, .. } = &out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("cut at 65536 bytes"), "{reason}");
    assert!(
        reason.len() < 1024,
        "the reason keeps only the start of the answer"
    );
    assert!(started.elapsed() < Duration::from_secs(3));

    r.push(Reply::Big(200, 10 * 1024 * 1024));
    let out = d.deliver(&s, &n).await;
    assert!(matches!(out, Outcome::Delivered { .. }), "{out:?}");

    r.push(Reply::Big(400, 10 * 1024 * 1024));
    let out = d.deliver(&s, &n).await;
    assert!(matches!(out, Outcome::Failed { .. }), "{out:?}");
}

#[tokio::test]
async fn endless_answers_are_cut_without_waiting() {
    let r = Receiver::start(SECRET).await;
    let d = deliverer(Duration::from_secs(5));
    let s = webhook(&r);
    let n = finding(EventType::FindingOpened, "dlv-endless");
    // A body that never ends, as fast as it is read: returning at all proves the read stops
    // at the limit (reading it whole would never end and would exhaust memory).
    r.push(Reply::Endless(502));
    let started = Instant::now();
    let out = d.deliver(&s, &n).await;
    assert!(
        matches!(&out, Outcome::Retry { reason, .. } if reason.contains("cut at")),
        "{out:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    r.push(Reply::Endless(200));
    let started = Instant::now();
    let out = d.deliver(&s, &n).await;
    assert!(matches!(out, Outcome::Delivered { .. }), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn slow_answers_are_bounded_by_the_timeout() {
    let r = Receiver::start(SECRET).await;
    let timeout = Duration::from_millis(1500);
    let d = deliverer(timeout);
    let s = webhook(&r);
    let n = finding(EventType::FindingOpened, "dlv-slow");

    // Accepted, then a body trickling forever: the status is all that counts.
    r.push(Reply::Trickle(200));
    let started = Instant::now();
    let out = d.deliver(&s, &n).await;
    assert!(matches!(out, Outcome::Delivered { .. }), "{out:?}");
    assert!(started.elapsed() < timeout);

    // An error trickling forever: read until the time limit, then retried.
    r.push(Reply::Trickle(503));
    let started = Instant::now();
    let out = d.deliver(&s, &n).await;
    let elapsed = started.elapsed();
    let Outcome::Retry { reason, .. } = &out else {
        panic!("{out:?}")
    };
    assert!(reason.starts_with("HTTP 503: zz"), "{reason}");
    assert!(reason.contains("unreadable"), "{reason}");
    assert!(
        elapsed >= timeout / 2 && elapsed < timeout + Duration::from_secs(1),
        "{elapsed:?}"
    );

    // No answer at all.
    r.push(Reply::Hang);
    let started = Instant::now();
    let out = d.deliver(&s, &n).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(&out, Outcome::Retry { reason, .. } if reason.starts_with("timeout")),
        "{out:?}"
    );
    assert!(elapsed < timeout + Duration::from_secs(1), "{elapsed:?}");
}

#[tokio::test]
async fn unreachable_receivers_are_retried() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = sink(&format!(
        "- type: webhook\n  url: http://127.0.0.1:{port}/hook?token=q5ecr3t\n  secret: x\n"
    ));
    let out = deliverer(Duration::from_secs(5))
        .deliver(&s, &finding(EventType::FindingOpened, "dlv-down"))
        .await;
    let Outcome::Retry { after, reason } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(*after, None);
    assert!(reason.starts_with("connection failed"), "{reason}");
    assert!(!reason.contains("q5ecr3t"), "the URL leaked into {reason}");
}
