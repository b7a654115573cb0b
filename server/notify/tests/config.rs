//! Sink settings as the server reads them (YAML and JSON through serde): every refusal names
//! the setting, secrets come from exactly one place and never show in `Debug`, and the
//! `events` / `systems` filters.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers panic by design

mod common;

use std::io::Write;
use std::time::Duration;

use aims_notify::{ConfigError, EventType, Outcome, SinkConfig, build_sinks};
use common::receiver::Receiver;
use common::{configs, deliverer, finding};

/// The error of building `yaml`'s sinks.
fn error(yaml: &str) -> ConfigError {
    match build_sinks(&configs(yaml)) {
        Ok(s) => panic!("accepted: {s:?}"),
        Err(e) => e,
    }
}

#[test]
fn bad_urls_name_the_setting() {
    let e = error("- type: webhook\n  url: not a url\n  secret: s\n");
    assert_eq!(e.setting(), "notifications[0].url");
    assert!(
        e.to_string()
            .starts_with("notifications[0].url: not a valid URL"),
        "{e}"
    );

    let e = error(
        "- type: slack\n  url: https://h/x\n- type: webhook\n  url: ftp://h/x\n  secret: s\n",
    );
    assert_eq!(
        e.to_string(),
        "notifications[1].url: scheme \"ftp\" is not supported (use http or https)"
    );

    let e = error("- type: github\n  repo: acme/fraud\n  token: t\n  api_url: nope\n");
    assert_eq!(e.setting(), "notifications[0].api_url");
}

#[test]
fn missing_secret_file_names_the_setting_and_the_path() {
    let e = error(
        "- type: webhook\n  url: https://h/x\n  secret_file: /nonexistent/aims/hook-secret\n",
    );
    let text = e.to_string();
    assert!(
        text.starts_with(
            "notifications[0].secret_file: /nonexistent/aims/hook-secret: No such file or directory"
        ),
        "{text}"
    );
}

#[test]
fn exactly_one_secret() {
    let e = error("- type: webhook\n  url: https://h/x\n");
    assert_eq!(
        e.to_string(),
        "notifications[0].secret: missing: set one of secret, secret_file or secret_env"
    );
    let e =
        error("- type: webhook\n  url: https://h/x\n  secret: a\n  secret_file: /etc/hostname\n");
    assert_eq!(
        e.to_string(),
        "notifications[0].secret_file: conflicts with secret: set exactly one of secret, secret_file or secret_env"
    );
    let e = error("- type: github\n  repo: acme/fraud\n  token_env: A\n  token_file: /b\n");
    assert_eq!(e.setting(), "notifications[0].token_env");
    let e = error("- type: slack\n");
    assert_eq!(e.setting(), "notifications[0].url");
    let e = error("- type: webhook\n  url: https://h/x\n  secret: \"\"\n");
    assert_eq!(e.to_string(), "notifications[0].secret: empty");
}

#[test]
fn secrets_from_environment() {
    let e = error(
        "- type: webhook\n  url: https://h/x\n  secret_env: AIMS_NOTIFY_TEST_UNSET_VARIABLE\n",
    );
    assert_eq!(
        e.to_string(),
        "notifications[0].secret_env: variable AIMS_NOTIFY_TEST_UNSET_VARIABLE is not set"
    );
    let e = error("- type: slack\n  url_env: AIMS_NOTIFY_TEST_UNSET_VARIABLE\n");
    assert_eq!(e.setting(), "notifications[0].url_env");
    // PATH is always set: read, not refused.
    let sinks = build_sinks(&configs(
        "- type: webhook\n  url: https://h/x\n  secret_env: PATH\n",
    ));
    assert!(sinks.is_ok());
}

#[test]
fn empty_secret_file_is_refused() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(b"\n").unwrap();
    let e = error(&format!(
        "- type: webhook\n  url: https://h/x\n  secret_file: {}\n",
        f.path().display()
    ));
    assert_eq!(e.setting(), "notifications[0].secret_file");
    assert!(e.to_string().ends_with(": empty"), "{e}");
}

#[tokio::test]
async fn secret_file_loses_one_trailing_newline() {
    let r = Receiver::start("from-a-file").await;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(b"from-a-file\n").unwrap();
    let sinks = build_sinks(&configs(&format!(
        "- type: webhook\n  url: {}/h\n  secret_file: {}\n",
        r.url,
        f.path().display()
    )))
    .unwrap();
    let out = deliverer(Duration::from_secs(5))
        .deliver(&sinks[0], &finding(EventType::FindingOpened, "d"))
        .await;
    assert!(matches!(out, Outcome::Delivered { .. }));
    assert!(r.received()[0].signature_valid);
}

#[test]
fn unknown_events_are_refused() {
    let e = error(
        "- type: webhook\n  url: https://h/x\n  secret: s\n- type: webhook\n  url: https://h/y\n  secret: s\n  events: [finding.opened, finding.closed]\n",
    );
    assert_eq!(e.setting(), "notifications[1].events[1]");
    assert!(
        e.to_string().contains("unknown event \"finding.closed\""),
        "{e}"
    );
    let e = error("- type: webhook\n  url: https://h/x\n  secret: s\n  events: []\n");
    assert_eq!(e.setting(), "notifications[0].events");
}

#[test]
fn names_are_unique() {
    let e = error(
        "- type: webhook\n  name: hooks\n  url: https://h/x\n  secret: s\n- type: slack\n  name: hooks\n  url: https://h/y\n",
    );
    assert_eq!(
        e.to_string(),
        "notifications[1].name: \"hooks\" is already the name of notifications[0]; sink names must be unique"
    );
    let e = error("- type: slack\n  name: \"a b\"\n  url: https://h/y\n");
    assert_eq!(e.setting(), "notifications[0].name");
    let sinks = build_sinks(&configs(
        "- type: webhook\n  url: https://h/x\n  secret: s\n- type: webhook\n  url: https://h/y\n  secret: s\n- type: slack\n  url: https://h/z\n",
    ))
    .unwrap();
    let names: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["webhook-0", "webhook-1", "slack-2"]);
    assert_eq!(sinks[2].kind(), "slack");
}

#[test]
fn unknown_types_and_fields_are_serde_errors_naming_them() {
    let e = serde_yaml::from_str::<Vec<SinkConfig>>("- type: email\n  to: ops@example.com\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("email") && e.contains("webhook"), "{e}");
    let e = serde_yaml::from_str::<Vec<SinkConfig>>(
        "- type: webhook\n  url: https://h/x\n  secert_file: /x\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("secert_file"), "{e}");
    let e = serde_json::from_str::<SinkConfig>(r#"{"url":"https://h/x"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("type"), "{e}");
}

#[test]
fn github_repo_is_owner_slash_name() {
    for bad in ["fraud", "acme/fraud/x", "acme/", "ac me/fraud"] {
        let e = error(&format!("- type: github\n  repo: \"{bad}\"\n  token: t\n"));
        assert_eq!(e.setting(), "notifications[0].repo", "{bad}");
    }
    let e = error("- type: github\n  repo: acme/fraud\n  token: t\n  labels: [\"\"]\n");
    assert_eq!(e.setting(), "notifications[0].labels[0]");
    let ok = build_sinks(&configs("- type: github\n  repo: acme/fraud\n  token: t\n")).unwrap();
    assert_eq!(ok[0].name(), "github-0");
    assert!(format!("{:?}", ok[0]).contains("api.github.com"));
}

#[test]
fn secrets_never_show_in_debug() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(b"file-secret-value-4\n").unwrap();
    let yaml = format!(
        "- type: webhook\n  url: https://hooks.example/in?token=query-secret-1\n  secret: inline-secret-2\n\
         - type: github\n  repo: acme/fraud\n  token: ghp_token-secret-3\n\
         - type: slack\n  url: https://chat.example/services/T1/B2/slack-secret-5\n\
         - type: webhook\n  url: https://h/x\n  secret_file: {}\n",
        f.path().display()
    );
    let cfg = configs(&yaml);
    let sinks = build_sinks(&cfg).unwrap();
    let shown = format!("{cfg:?} {cfg:#?} {sinks:?} {sinks:#?}");
    for secret in [
        "query-secret-1",
        "inline-secret-2",
        "ghp_token-secret-3",
        "file-secret-value-4",
        "slack-secret-5",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("<redacted>"));
    assert!(shown.contains("https://hooks.example"));
}

#[test]
fn filters() {
    let sinks = build_sinks(&configs(
        "- type: slack\n  url: https://h/x\n  events: [finding.opened, source.silent]\n  systems: [fraud-scoring]\n\
         - type: slack\n  url: https://h/y\n",
    ))
    .unwrap();
    let (narrow, all) = (&sinks[0], &sinks[1]);
    assert!(narrow.wants(EventType::FindingOpened, Some("fraud-scoring")));
    assert!(!narrow.wants(EventType::FindingOpened, Some("churn")));
    assert!(!narrow.wants(EventType::FindingResolved, Some("fraud-scoring")));
    assert!(!narrow.wants(EventType::SourceSilent, None));
    assert!(narrow.wants(EventType::Test, None));
    for e in EventType::ALL {
        assert!(all.wants(e, None) && all.wants(e, Some("x")));
    }
    let json: Vec<SinkConfig> = serde_json::from_str(
        r#"[{"type":"webhook","url":"https://h/x","secret":"s","events":["evidence.expiring"]}]"#,
    )
    .unwrap();
    let s = build_sinks(&json).unwrap();
    assert!(s[0].wants(EventType::EvidenceExpiring, Some("any")));
    assert!(!s[0].wants(EventType::FindingOpened, Some("any")));
}
