//! Issue 15 end to end, through the real `aims-server` and `aims-agent` binaries: a receiver
//! process-side HTTP server on 127.0.0.1 that checks every `X-Aims-Signature` itself; the seed
//! pipeline opens and resolves findings; the webhook and Slack sinks get them, signed, with
//! absolute links; a receiver outage and a server killed mid-retry lose nothing and keep the
//! delivery id; `aims-server notify test` reports each sink; bad sink settings stop `serve`
//! before it listens, naming the setting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

use aims_e2e::{ServerProcess, bin, get_json, get_text, run_seed_pipeline};

/// The stateful GitHub fake of aims-notify's own tests (recorded response shapes over real HTTP).
#[allow(dead_code)]
#[path = "../../../server/notify/tests/common/fake_github.rs"]
mod fake_github;

pub(crate) const SECRET: &str = "webhook-secret-of-the-test";
const PUBLIC: &str = "https://aims.example.test";

/// One request the receiver got.
#[derive(Clone, Debug)]
pub(crate) struct Got {
    pub(crate) path: String,
    pub(crate) delivery: String,
    pub(crate) event: String,
    pub(crate) signed_ok: bool,
    pub(crate) body: Value,
    pub(crate) raw: Vec<u8>,
    pub(crate) answered: u16,
}

#[derive(Clone, Default)]
pub(crate) struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    /// Answer this many more webhook requests with 503 + Retry-After: 1.
    fail: Arc<AtomicU32>,
    /// Answer every webhook request with 503 while set (an outage).
    down: Arc<std::sync::atomic::AtomicBool>,
}

/// The receiver's own signature check, as README shows it (HMAC-SHA256 over the raw body).
fn signature_ok(headers: &HeaderMap, body: &[u8]) -> bool {
    use hmac::{KeyInit, Mac};
    let Some(sig) = headers
        .get("x-aims-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
    else {
        return false;
    };
    let Ok(expected) = hex::decode(sig) else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

async fn hook(
    State(r): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let failing = uri.path() == "/hook" && r.down.load(Ordering::SeqCst)
        || uri.path() == "/hook"
            && r.fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
    let status = if failing { 503 } else { 200 };
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    r.got.lock().unwrap().push(Got {
        path: uri.path().to_owned(),
        delivery: h("x-aims-delivery"),
        event: h("x-aims-event"),
        signed_ok: signature_ok(&headers, &body),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
        answered: status,
    });
    let mut resp = (StatusCode::from_u16(status).unwrap(), "").into_response();
    if failing {
        resp.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
    }
    resp
}

async fn slack(State(r): State<Receiver>, body: Bytes) -> impl IntoResponse {
    r.got.lock().unwrap().push(Got {
        path: "/slack".into(),
        delivery: String::new(),
        event: String::new(),
        signed_ok: false,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
        answered: 200,
    });
    "ok"
}

pub(crate) async fn start_receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .route("/expiring", post(hook))
        .route("/silent", post(hook))
        .route("/slack", post(slack))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

fn settings(dir: &Path, receiver: &str, github: &str) -> std::path::PathBuf {
    let secret = dir.join("webhook.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let cfg = dir.join("server.yaml");
    std::fs::write(
        &cfg,
        format!(
            "public_url: \"{PUBLIC}\"\n\
             notify: {{ timeout_secs: 5, max_age_secs: 3600 }}\n\
             notifications:\n\
             \x20 - {{ type: webhook, name: hook, url: \"{receiver}/hook\", secret_file: \"{}\",\n\
             \x20     events: [finding.opened, finding.resolved, finding.acknowledged] }}\n\
             \x20 - {{ type: slack, name: chat, url: \"{receiver}/slack\", events: [finding.opened] }}\n\
             \x20 - {{ type: webhook, name: soon, url: \"{receiver}/expiring\", secret_file: \"{}\",\n\
             \x20     events: [evidence.expiring], warn_days: 365 }}\n\
             \x20 - {{ type: github, name: tracker, repo: {}/{}, token: {}, api_url: \"{github}\",\n\
             \x20     events: [finding.opened, finding.resolved, finding.acknowledged] }}\n",
            secret.display(),
            secret.display(),
            fake_github::OWNER,
            fake_github::REPO,
            fake_github::TOKEN,
        ),
    )
    .unwrap();
    cfg
}

fn start(dir: &Path, cfg: &Path) -> ServerProcess {
    let database = format!("sqlite://{}", dir.join("aims.db").display());
    ServerProcess::start_with(
        &dir.join("run"),
        &database,
        "127.0.0.1:0",
        &["--config", cfg.to_str().unwrap()],
    )
    .unwrap()
}

pub(crate) fn received(r: &Receiver) -> Vec<Got> {
    r.got.lock().unwrap().clone()
}

/// Waits until `pred` holds for what the receiver got, or fails with what it got.
async fn wait_for(r: &Receiver, what: &str, limit: Duration, pred: impl Fn(&[Got]) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let got = received(r);
        if pred(&got) {
            return;
        }
        if Instant::now() > deadline {
            let summary: Vec<String> = got
                .iter()
                .map(|g| format!("{} {} {} {}", g.path, g.event, g.delivery, g.answered))
                .collect();
            panic!("timed out waiting for {what}; got:\n{}", summary.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Delivered webhook events: delivery id → (event, body).
fn delivered(got: &[Got]) -> BTreeMap<String, (String, Value)> {
    got.iter()
        .filter(|g| g.path == "/hook" && g.answered == 200)
        .map(|g| (g.delivery.clone(), (g.event.clone(), g.body.clone())))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn issue_15_findings_reach_signed_webhooks_and_slack_through_outages_and_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let (receiver, rurl) = start_receiver().await;
    let github = fake_github::FakeGithub::start().await;
    let cfg = settings(tmp.path(), &rurl, &github.url);
    let mut server = start(tmp.path(), &cfg);
    // The first attempts meet a receiver answering 503 (Retry-After: 1).
    receiver.fail.store(3, Ordering::SeqCst);
    let viewer = run_seed_pipeline(&server, &tmp.path().join("work")).unwrap();
    let open = get_json(&format!("{}/v1/findings", server.url), &viewer)
        .await
        .unwrap();
    let open_ids: BTreeSet<String> = open["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !open_ids.is_empty(),
        "the seed pipeline leaves findings open"
    );

    // Every open finding reaches the webhook as finding.opened, despite the 503s.
    wait_for(
        &receiver,
        "finding.opened of every open finding",
        Duration::from_secs(120),
        |got| {
            let opened: BTreeSet<String> = delivered(got)
                .values()
                .filter(|(e, _)| e == "finding.opened")
                .filter_map(|(_, b)| b["finding"]["id"].as_str().map(str::to_owned))
                .collect();
            open_ids.is_subset(&opened)
        },
    )
    .await;
    let got = received(&receiver);
    assert!(got.iter().any(|g| g.answered == 503), "the outage was met");
    for g in got.iter().filter(|g| g.path == "/hook") {
        assert!(g.signed_ok, "bad signature on {}", g.delivery);
        assert_eq!(g.delivery.len(), 32, "{g:?}");
        assert_eq!(g.body["delivery"], json!(g.delivery));
        assert_eq!(g.body["event"], json!(g.event));
        let f = &g.body["finding"];
        let dashboard = f["links"]["dashboard"].as_str().unwrap();
        assert!(
            dashboard.starts_with(&format!("{PUBLIC}/systems/")),
            "{}",
            g.body
        );
        for p in f["links"]["proofs"].as_array().unwrap() {
            assert!(
                p.as_str()
                    .unwrap()
                    .starts_with(&format!("{PUBLIC}/v1/evidence/"))
            );
        }
    }
    // A retried delivery is the same bytes under the same id.
    let mut by_id: BTreeMap<&str, BTreeSet<&[u8]>> = BTreeMap::new();
    for g in got.iter().filter(|g| g.path == "/hook") {
        by_id.entry(&g.delivery).or_default().insert(&g.raw);
    }
    assert!(
        by_id.values().all(|bodies| bodies.len() == 1),
        "retries keep their bytes"
    );
    // Slack got the opened findings only (its filter), as messages.
    let slack: Vec<&Got> = got.iter().filter(|g| g.path == "/slack").collect();
    assert!(!slack.is_empty());
    assert!(
        slack.iter().all(|g| g.body["text"].is_string()),
        "{:?}",
        slack[0].body
    );

    // A sink with its own warn_days hears of every fresh window closing within it, once each,
    // with when it closes.
    wait_for(
        &receiver,
        "evidence.expiring",
        Duration::from_secs(60),
        |got| {
            got.iter()
                .any(|g| g.path == "/expiring" && g.event == "evidence.expiring")
        },
    )
    .await;
    let expiring: Vec<Got> = received(&receiver)
        .into_iter()
        .filter(|g| g.path == "/expiring")
        .collect();
    for g in &expiring {
        assert!(g.signed_ok);
        assert_eq!(g.event, "evidence.expiring", "{:?}", g.body);
        assert_eq!(g.body["finding"]["kind"], "expiring");
        assert!(g.body["finding"]["expires_at"].is_string(), "{}", g.body);
    }
    let ids: BTreeSet<&str> = expiring.iter().map(|g| g.delivery.as_str()).collect();
    assert_eq!(ids.len(), expiring.len(), "each window once");

    // GitHub: one issue per open finding, found by its hidden marker, labelled by kind and
    // control; the token went only to the configured API.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let issues = github.issues();
        let marked = |id: &str| {
            issues
                .iter()
                .filter(|i| i.body.contains(&format!("aims-finding:{id}")))
                .count()
        };
        if open_ids.iter().all(|id| marked(id) == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "GitHub issues: {:?}",
            issues.iter().map(|i| &i.title).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let issues = github.issues();
    assert!(
        issues
            .iter()
            .all(|i| i.labels.iter().any(|l| l.starts_with("control:"))),
        "{issues:?}"
    );
    // The seed repository's CODEOWNERS names the owning teams of each system's paths.
    assert!(
        issues
            .iter()
            .any(|i| i.body.contains("Owners (CODEOWNERS): @acme/")),
        "{:?}",
        issues.iter().map(|i| &i.body).collect::<Vec<_>>()
    );
    let bearer = format!("Bearer {}", fake_github::TOKEN);
    assert!(
        github
            .log()
            .iter()
            .all(|l| l.authorization.as_deref() == Some(bearer.as_str()))
    );

    // A finding resolves: its controls are declared not applicable (statement of
    // applicability), so it leaves the open findings and the webhook hears finding.resolved.
    let admin = server.token("admin", "risk-board").unwrap();
    let findings = open["findings"].as_array().unwrap();
    let resolved = &findings[0];
    let rid = resolved["id"].as_str().unwrap().to_owned();
    let system = resolved["system"].as_str().unwrap();
    let controls: serde_json::Map<String, Value> = resolved["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c.as_str().unwrap().to_owned(),
                json!({"applicable": false, "justification": "Retired in the test."}),
            )
        })
        .collect();
    let r = reqwest::Client::new()
        .put(format!("{}/v1/systems/{system}/applicability", server.url))
        .bearer_auth(&admin)
        .json(&json!({ "controls": controls }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    wait_for(
        &receiver,
        "finding.resolved",
        Duration::from_secs(60),
        |got| {
            delivered(got)
                .values()
                .any(|(e, b)| e == "finding.resolved" && b["finding"]["id"] == json!(rid))
        },
    )
    .await;
    // …and its GitHub issue is closed.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !github
        .issues()
        .iter()
        .any(|i| i.body.contains(&format!("aims-finding:{rid}")) && i.state == "closed")
    {
        assert!(Instant::now() < deadline, "{:?}", github.issues());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Outage across a restart: an acknowledgement is attempted while the receiver is down, the
    // server is killed, the receiver recovers, the restarted server delivers it under the same
    // delivery id, once.
    receiver.down.store(true, Ordering::SeqCst);
    let fid = findings
        .iter()
        .find(|f| {
            f["system"] != json!(system)
                || f["controls"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|c| !controls.contains_key(c.as_str().unwrap()))
        })
        .and_then(|f| f["id"].as_str())
        .expect("a second finding outside the excluded controls")
        .to_owned();
    let expires =
        aims_model::Timestamp::from_datetime(chrono::Utc::now() + chrono::Duration::days(30));
    let r = reqwest::Client::new()
        .post(format!("{}/v1/findings/{fid}/acknowledge", server.url))
        .bearer_auth(&admin)
        .json(&json!({"reason": "accepted by the risk board", "expires_at": expires.to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    wait_for(
        &receiver,
        "an attempt of finding.acknowledged",
        Duration::from_secs(60),
        |got| got.iter().any(|g| g.event == "finding.acknowledged"),
    )
    .await;
    server.kill();
    let ack_id = received(&receiver)
        .iter()
        .find(|g| g.event == "finding.acknowledged")
        .map(|g| g.delivery.clone())
        .unwrap();
    receiver.down.store(false, Ordering::SeqCst);
    let server = start(tmp.path(), &cfg);
    wait_for(
        &receiver,
        "finding.acknowledged delivered after the restart",
        Duration::from_secs(120),
        |got| {
            delivered(got)
                .get(&ack_id)
                .is_some_and(|(e, _)| e == "finding.acknowledged")
        },
    )
    .await;
    let got = received(&receiver);
    let ack = got
        .iter()
        .filter(|g| g.event == "finding.acknowledged")
        .collect::<Vec<_>>();
    assert!(
        ack.iter().all(|g| g.delivery == ack_id),
        "one delivery id across the restart"
    );
    assert_eq!(ack.iter().filter(|g| g.answered == 200).count(), 1);
    assert_eq!(
        ack[0].body["finding"]["acknowledged"]["reason"],
        json!("accepted by the risk board")
    );
    // The restart re-sent nothing that was already delivered.
    let delivered_twice = got
        .iter()
        .filter(|g| g.path == "/hook" && g.answered == 200)
        .fold(BTreeMap::<&str, u32>::new(), |mut m, g| {
            *m.entry(&g.delivery).or_default() += 1;
            m
        });
    assert!(
        delivered_twice.values().all(|n| *n == 1),
        "{delivered_twice:?}"
    );
    // Delivery state is visible: /metrics per sink and state, /sources per sink.
    let metrics = get_text(&format!("{}/metrics", server.url), &viewer)
        .await
        .unwrap();
    assert!(
        metrics.contains("aims_notifications{sink=\"hook\",state=\"delivered\"}"),
        "{metrics}"
    );
    let sources = get_text(&format!("{}/sources", server.url), &viewer)
        .await
        .unwrap();
    assert!(sources.contains("id=\"notifications\""), "{sources}");
    assert!(sources.contains("data-sink=\"chat\""), "{sources}");
    drop(server);

    // README's receiver checks (shell/openssl and Python), run as written on a real delivery:
    // valid for the body as sent, INVALID for a changed byte.
    let readme = std::fs::read_to_string(aims_e2e::workspace_root().join("README.md")).unwrap();
    let sample = received(&receiver)
        .into_iter()
        .find(|g| g.path == "/hook" && g.signed_ok)
        .unwrap();
    let sig = format!("sha256={}", {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&sample.raw);
        hex::encode(mac.finalize().into_bytes())
    });
    let work = tmp.path().join("receiver");
    std::fs::create_dir_all(&work).unwrap();
    for (marker, program) in [
        ("webhook-verify-sh", "sh"),
        ("webhook-verify-py", "python3"),
    ] {
        let code = fenced_after(&readme, marker);
        for (body, want) in [
            (sample.raw.clone(), "valid"),
            ([&sample.raw[..], b" "].concat(), "INVALID"),
        ] {
            std::fs::write(work.join("body.json"), &body).unwrap();
            let out = Command::new(program)
                .args(["-c", &code])
                .current_dir(&work)
                .env("SECRET", SECRET)
                .env("SIG", &sig)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                stdout.trim(),
                want,
                "{marker}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // README's settings example builds every sink (delivery itself cannot leave this machine).
    let example = work.join("readme-server.yaml");
    std::fs::write(&example, fenced_after(&readme, "notify-settings")).unwrap();
    let out = Command::new(bin("aims-server").unwrap())
        .args(["notify", "test", "--config", example.to_str().unwrap()])
        .env("AIMS_WEBHOOK_SECRET", "s")
        .env("GITHUB_TOKEN", "t")
        .env("SLACK_WEBHOOK_URL", "http://127.0.0.1:9/slack")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("invalid setting"), "{stderr}");
    for sink in ["ops-hook (webhook)", "tracker (github)", "chat (slack)"] {
        assert!(stdout.contains(sink), "{sink}: {stdout}{stderr}");
    }

    // `notify test`: one test event per sink, each result printed.
    let out = Command::new(bin("aims-server").unwrap())
        .args(["notify", "test", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("hook (webhook): ok"), "{stdout}");
    assert!(stdout.contains("chat (slack): ok"), "{stdout}");
    assert!(stdout.contains("tracker (github): ok"), "{stdout}");
    assert!(
        received(&receiver)
            .iter()
            .any(|g| g.event == "test" && g.signed_ok)
    );
    // A sink that refuses is reported and the command fails.
    receiver.down.store(true, Ordering::SeqCst);
    let out = Command::new(bin("aims-server").unwrap())
        .args(["notify", "test", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("hook (webhook): retry"));
}

#[test]
fn issue_15_bad_sink_settings_stop_serve_before_it_listens() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "notifications:\n  - { type: pager, url: \"http://127.0.0.1:9/\" }\n",
            "pager",
        ),
        (
            "notifications:\n  - { type: webhook, url: \"not a url\", secret: x }\n",
            "notifications[0].url",
        ),
        (
            "notifications:\n  - { type: webhook, url: \"http://127.0.0.1:9/\", secret_file: \"/nonexistent/secret\" }\n",
            "notifications[0].secret_file",
        ),
        ("public_url: \"aims.example\"\n", "public_url"),
    ];
    for (i, (yaml, needle)) in cases.iter().enumerate() {
        let cfg = tmp.path().join(format!("bad-{i}.yaml"));
        std::fs::write(&cfg, yaml).unwrap();
        let db = format!(
            "sqlite://{}",
            tmp.path().join(format!("db-{i}.sqlite")).display()
        );
        let out = Command::new(bin("aims-server").unwrap())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                &db,
                "--config",
                cfg.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{yaml}: {stdout}");
        assert!(!stdout.contains("listening"), "{yaml}: {stdout}");
        assert!(
            stderr.contains(needle),
            "{yaml}: stderr lacks {needle:?}:\n{stderr}"
        );
        assert!(!stderr.contains("webhook-secret"), "{stderr}");
    }
}

/// The fenced code block right after `<!-- marker -->` in `text`.
fn fenced_after(text: &str, marker: &str) -> String {
    let at = text
        .find(&format!("<!-- {marker} -->"))
        .unwrap_or_else(|| panic!("README has no {marker} example"));
    let rest = &text[at..];
    let start = rest.find("```").unwrap();
    let body = &rest[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_owned()
}
