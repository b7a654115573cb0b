//! The `aims-agent` binary: exit codes and output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

mod common;

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aims-agent"));
    // Keep the parent's overrides out of the child.
    for (k, _) in std::env::vars() {
        if k.starts_with("AIMS_AGENT__") {
            c.env_remove(k);
        }
    }
    c
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn validate_accepts_the_design_example() {
    // `validate` builds every source as `once` would: the GitHub source needs its token.
    let out = bin()
        .args(["validate", "--config"])
        .arg(fixture("agent.yaml"))
        .env("GITHUB_TOKEN", "ghp_example")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "config ok: 5 sources"
    );
    // Without it, validate refuses exactly what `once` would refuse, naming the source.
    let out = bin()
        .args(["validate", "--config"])
        .arg(fixture("agent.yaml"))
        .env_remove("GITHUB_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("source \"gh\"") && err.contains("GITHUB_TOKEN"),
        "{err}"
    );
}

#[test]
fn validate_exits_2_with_the_error() {
    let out = bin()
        .args(["validate", "--config"])
        .arg(fixture("duplicate_source.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sources[1].id"), "{err}");
}

#[test]
fn validate_accepts_env_token() {
    let out = bin()
        .args(["validate", "--config"])
        .arg(fixture("no_token.yaml"))
        .env("AIMS_AGENT__SERVER__TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "config ok: 1 sources"
    );
}

#[tokio::test]
async fn once_ships_and_prints_a_summary() {
    let (url, st) = common::spawn_server(vec![]).await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("fraud")).unwrap();
    std::fs::write(data.join("fraud/model_card.md"), "# card\n").unwrap();
    let cfg = tmp.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: 1\nagent: {{ id: cli-agent }}\nserver: {{ url: 'http://127.0.0.1:1' }}\nspool_dir: '{}'\nsources:\n  - {{ id: ml-repo, type: dir, path: '{}', system: fraud }}\n",
            tmp.path().join("state").display(),
            data.display()
        ),
    )
    .unwrap();
    let cfg2 = cfg.clone();
    let url2 = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        bin()
            .args(["once", "--config"])
            .arg(&cfg2)
            .env("AIMS_AGENT__SERVER__URL", &url2)
            .env("AIMS_AGENT__SERVER__TOKEN", "cli-secret")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("ml-repo: 1 listed, 1 fetched, 0 unchanged, 0 gone, 1 shipped"),
        "{err}"
    );
    assert!(
        !err.contains("cli-secret"),
        "the token is never logged: {err}"
    );
    assert_eq!(st.count(), 1);
    assert_eq!(
        st.requests.lock().unwrap()[0].1.as_deref(),
        Some("Bearer cli-secret")
    );

    // Server unreachable and records pending: exit 1, records stay spooled.
    std::fs::write(data.join("fraud/model_card.md"), "# card v2\n").unwrap();
    let out = tokio::task::spawn_blocking(move || {
        bin()
            .args(["once", "--max-attempts", "1", "--config"])
            .arg(&cfg)
            .env("AIMS_AGENT__SERVER__TOKEN", "cli-secret")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pending = std::fs::read_dir(tmp.path().join("state/spool"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(pending, 1);
}
