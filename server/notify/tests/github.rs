//! The GitHub sink against the recorded-shape issues API served over real HTTP
//! (`common::fake_github`): one issue per finding with its marker, labels and assignees, no
//! second issue on restarts, replicas or a lagging search index, comment and close on resolve,
//! rate limits, validation errors, GitHub Enterprise paths and redirects.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers panic by design

mod common;

use std::time::Duration;

use aims_notify::{Deliverer, EventType, Notification, Outcome, Sink};
use common::fake_github::{FakeGithub, TOKEN, fixture};
use common::receiver::Receiver;
use common::{FINDING_ID, deliverer, finding, silent, sink};

fn github(gh: &FakeGithub) -> Sink {
    sink(&gh.sink_yaml("  labels: [compliance]\n"))
}

fn d() -> Deliverer {
    deliverer(Duration::from_secs(5))
}

fn delivered(out: &Outcome) -> &str {
    match out {
        Outcome::Delivered { detail } => detail,
        other => panic!("not delivered: {other:?}"),
    }
}

#[tokio::test]
async fn opened_creates_one_issue_with_marker_labels_and_assignees() {
    let gh = FakeGithub::start().await;
    let out = d()
        .deliver(&github(&gh), &finding(EventType::FindingOpened, "dlv-1"))
        .await;
    assert_eq!(delivered(&out), "opened issue #1");

    let issues = gh.issues();
    assert_eq!(issues.len(), 1);
    let i = &issues[0];
    assert!(
        i.body
            .contains(&format!("<!-- aims-finding:{FINDING_ID} -->")),
        "{}",
        i.body
    );
    assert!(i.body.contains("<!-- aims-delivery:dlv-1 -->"));
    assert!(
        i.body
            .contains("https://aims.example/systems/fraud-scoring/controls/A.6.2.6")
    );
    assert!(
        i.body
            .contains("https://aims.example/v1/evidence/rec-validation-v6/proof")
    );
    assert_eq!(i.title, "aims: changed on fraud-scoring (A.6.2.6, A.7.4)");
    assert_eq!(
        i.labels,
        [
            "compliance",
            "aims",
            "aims:changed",
            "control:A.6.2.6",
            "control:A.7.4"
        ]
    );
    // `@acme/ml-team` is a team, not an assignable login.
    assert_eq!(i.assignees, ["alice"]);
    assert_eq!(i.state, "open");

    let log = gh.log();
    assert!(
        log.iter()
            .all(|l| l.authorization.as_deref() == Some(&*format!("Bearer {TOKEN}")))
    );
    let requests: Vec<String> = log
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l.method,
                l.path_and_query.split('?').next().unwrap()
            )
        })
        .collect();
    assert_eq!(
        requests,
        [
            "GET /search/issues",
            "GET /repos/acme/fraud/issues",
            "POST /repos/acme/fraud/issues"
        ]
    );
    let search = &log[0].path_and_query;
    assert!(
        search.contains("aims-finding%3A3f9a0c1d") || search.contains("aims-finding:3f9a0c1d"),
        "{search}"
    );
}

#[tokio::test]
async fn opened_again_creates_no_second_issue() {
    let gh = FakeGithub::start().await;
    let s = github(&gh);
    let first = finding(EventType::FindingOpened, "dlv-1");
    delivered(&d().deliver(&s, &first).await);

    // The same delivery retried (its answer was lost): nothing more.
    let out = d().deliver(&s, &first).await;
    assert_eq!(delivered(&out), "issue #1 was opened by this delivery");
    assert!(gh.issues()[0].comments.is_empty());

    // Another replica, or a restart, sends the event again under a new delivery id.
    let out = d()
        .deliver(&s, &finding(EventType::FindingOpened, "dlv-2"))
        .await;
    assert_eq!(delivered(&out), "commented on issue #1");
    let issues = gh.issues();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].comments.len(), 1);
    assert!(issues[0].comments[0].contains("Reported again"));
    assert!(issues[0].comments[0].contains("<!-- aims-delivery:dlv-2 -->"));
}

#[tokio::test]
async fn a_lagging_search_index_still_finds_a_new_issue() {
    let gh = FakeGithub::start().await;
    gh.set_search_lag(true);
    let s = github(&gh);
    delivered(
        &d().deliver(&s, &finding(EventType::FindingOpened, "dlv-1"))
            .await,
    );
    let out = d()
        .deliver(&s, &finding(EventType::FindingAcknowledged, "dlv-2"))
        .await;
    assert_eq!(delivered(&out), "commented on issue #1");
    let issues = gh.issues();
    assert_eq!(issues.len(), 1);
    let c = &issues[0].comments[0];
    assert!(
        c.contains("Acknowledged") && c.contains("carol") && c.contains("2026-03-08"),
        "{c}"
    );
}

#[tokio::test]
async fn resolved_comments_and_closes() {
    let gh = FakeGithub::start().await;
    let s = github(&gh);
    delivered(
        &d().deliver(&s, &finding(EventType::FindingOpened, "dlv-1"))
            .await,
    );
    let out = d()
        .deliver(&s, &finding(EventType::FindingResolved, "dlv-2"))
        .await;
    assert_eq!(delivered(&out), "commented on and closed issue #1");
    let i = &gh.issues()[0];
    assert_eq!(i.state, "closed");
    assert_eq!(i.state_reason.as_deref(), Some("completed"));
    assert_eq!(i.comments.len(), 1);
    assert!(
        i.comments[0].starts_with("**Resolved**"),
        "{}",
        i.comments[0]
    );
    let patch = gh.log().into_iter().find(|l| l.method == "PATCH").unwrap();
    assert_eq!(patch.path_and_query, "/repos/acme/fraud/issues/1");

    // Resolved again (a retry): no second comment.
    let out = d()
        .deliver(&s, &finding(EventType::FindingResolved, "dlv-3"))
        .await;
    assert_eq!(delivered(&out), "issue #1 already closed");
    assert_eq!(gh.issues()[0].comments.len(), 1);

    // The finding comes back: the same issue is reopened.
    let out = d()
        .deliver(&s, &finding(EventType::FindingOpened, "dlv-4"))
        .await;
    assert_eq!(delivered(&out), "reopened issue #1");
    assert_eq!(gh.issues().len(), 1);
    assert_eq!(gh.issues()[0].state, "open");
}

#[tokio::test]
async fn resolved_without_an_issue_does_nothing() {
    let gh = FakeGithub::start().await;
    let out = d()
        .deliver(&github(&gh), &finding(EventType::FindingResolved, "dlv-1"))
        .await;
    assert!(delivered(&out).starts_with("no issue for finding"));
    assert!(gh.issues().is_empty());
}

#[tokio::test]
async fn expiring_without_an_issue_opens_one() {
    let gh = FakeGithub::start().await;
    let out = d()
        .deliver(&github(&gh), &finding(EventType::EvidenceExpiring, "dlv-1"))
        .await;
    assert_eq!(delivered(&out), "opened issue #1");
    let i = &gh.issues()[0];
    assert!(
        i.body.contains("Evidence expiring") && i.body.contains("2026-03-10"),
        "{}",
        i.body
    );
}

#[tokio::test]
async fn rate_limit_is_retried_after_the_reset() {
    let gh = FakeGithub::start().await;
    let reset = chrono::Utc::now().timestamp() + 90;
    gh.rate_limit_until(reset);
    let out = d()
        .deliver(&github(&gh), &finding(EventType::FindingOpened, "dlv-1"))
        .await;
    let Outcome::Retry {
        after: Some(after),
        reason,
    } = &out
    else {
        panic!("{out:?}")
    };
    assert!(
        *after >= Duration::from_secs(85) && *after <= Duration::from_secs(90),
        "{after:?}"
    );
    assert!(
        reason.contains("HTTP 403") && reason.contains("rate limit"),
        "{reason}"
    );
    assert!(gh.issues().is_empty());
}

#[tokio::test]
async fn validation_error_fails_with_githubs_message() {
    let gh = FakeGithub::start().await;
    let mut v = fixture("validation_failed.json");
    v["errors"] = serde_json::json!([{"resource": "Label", "code": "invalid", "field": "name"}]);
    gh.fail_next(200, fixture("search_issues.json"));
    gh.fail_next(200, serde_json::json!([]));
    gh.fail_next(422, v);
    let out = d()
        .deliver(&github(&gh), &finding(EventType::FindingOpened, "dlv-1"))
        .await;
    let Outcome::Failed { reason } = &out else {
        panic!("{out:?}")
    };
    assert_eq!(
        reason,
        "POST /repos/acme/fraud/issues: HTTP 422: Validation Failed: Label.name invalid"
    );
}

#[tokio::test]
async fn refused_assignees_do_not_lose_the_issue() {
    let gh = FakeGithub::start().await;
    let mut n = finding(EventType::FindingOpened, "dlv-1");
    if let Some(f) = n.finding.as_mut() {
        f.owners = vec!["@ghost".into()];
    }
    let out = d().deliver(&github(&gh), &n).await;
    let detail = delivered(&out);
    assert!(
        detail.starts_with("opened issue #1 (without assignees"),
        "{detail}"
    );
    assert!(detail.contains("Issue.assignees invalid"), "{detail}");
    let issues = gh.issues();
    assert_eq!(issues.len(), 1);
    assert!(issues[0].assignees.is_empty());
}

#[tokio::test]
async fn server_errors_retry_and_client_errors_fail() {
    let gh = FakeGithub::start().await;
    let s = github(&gh);
    let n = finding(EventType::FindingOpened, "dlv-1");
    gh.fail_next(502, serde_json::json!({"message": "Server Error"}));
    let out = d().deliver(&s, &n).await;
    assert!(
        matches!(&out, Outcome::Retry { reason, .. } if reason.contains("HTTP 502")),
        "{out:?}"
    );

    let bad_token = sink(&gh.sink_yaml("").replace(TOKEN, "ghp_wrong"));
    let out = d().deliver(&bad_token, &n).await;
    assert!(
        matches!(&out, Outcome::Failed { reason } if reason.contains("HTTP 401: Bad credentials")),
        "{out:?}"
    );
    assert!(gh.issues().is_empty());
}

#[tokio::test]
async fn test_event_only_reads_the_repository() {
    let gh = FakeGithub::start().await;
    let t = Notification::test("dlv-t".into(), "2026-03-01T10:00:00Z".into());
    let out = d().deliver(&github(&gh), &t).await;
    assert_eq!(delivered(&out), "repository acme/fraud reachable");
    assert!(gh.issues().is_empty());
    assert_eq!(gh.log().len(), 1);

    let other = sink(&gh.sink_yaml("").replace("acme/fraud", "acme/missing"));
    let out = d().deliver(&other, &t).await;
    assert!(
        matches!(&out, Outcome::Failed { reason } if reason == "GET /repos/acme/missing: HTTP 404: Not Found"),
        "{out:?}"
    );
}

#[tokio::test]
async fn silent_sources_get_one_issue() {
    let gh = FakeGithub::start().await;
    let s = github(&gh);
    let out = d().deliver(&s, &silent("dlv-1")).await;
    assert_eq!(delivered(&out), "opened issue #1");
    let out = d().deliver(&s, &silent("dlv-2")).await;
    assert_eq!(delivered(&out), "commented on issue #1");
    let issues = gh.issues();
    assert_eq!(issues.len(), 1);
    assert!(
        issues[0]
            .body
            .contains("<!-- aims-source:edge-1/mlflow-prod -->")
    );
    assert_eq!(
        issues[0].labels,
        ["compliance", "aims", "aims:source-silent"]
    );
    assert_eq!(issues[0].title, "aims: source silent: edge-1/mlflow-prod");
    assert!(issues[0].comments[0].contains("Still silent"));
}

#[tokio::test]
async fn enterprise_api_path() {
    let gh = FakeGithub::start().await;
    let s = sink(&gh.sink_yaml("").replace(
        &format!("api_url: {}", gh.url),
        &format!("api_url: {}/api/v3/", gh.url),
    ));
    let out = d()
        .deliver(&s, &finding(EventType::FindingOpened, "dlv-1"))
        .await;
    assert_eq!(delivered(&out), "opened issue #1");
    assert!(
        gh.log()
            .iter()
            .all(|l| l.path_and_query.starts_with("/api/v3/"))
    );
}

#[tokio::test]
async fn redirects_keep_the_token_home() {
    let gh = FakeGithub::start().await;
    let elsewhere = Receiver::start("unused").await;
    gh.redirect_to(&elsewhere.url);
    let out = d()
        .deliver(&github(&gh), &finding(EventType::FindingOpened, "dlv-1"))
        .await;
    let Outcome::Failed { reason } = &out else {
        panic!("{out:?}")
    };
    assert!(
        reason.contains("HTTP 301") && reason.contains("not followed"),
        "{reason}"
    );
    assert!(elsewhere.received().is_empty());
}
