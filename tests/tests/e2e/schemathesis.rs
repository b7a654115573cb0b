//! Schemathesis against the server's own `/v1/openapi.json`: property-based requests to every
//! operation (examples, coverage, fuzzing and stateful phases), with every check on except
//! `positive_data_acceptance`. That one check is off because some rules depend on the server's
//! state and cannot be written in OpenAPI: a timestamp may not lie in the future, a kind must be
//! in the loaded catalog, a proof index must be below the current tree size. Everything else must
//! hold: no 5xx, responses and status codes as documented, JSON errors, and requests that break
//! the schema are refused.
//!
//! `st` comes from `AIMS_SCHEMATHESIS` (set by the test command, which installs schemathesis into
//! a virtualenv) or `$HOME/.cache/aims-evidence/venv-st/bin/st`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use aims_e2e::{ServerProcess, agent_once, git, write_agent_config};

fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("AIMS_SCHEMATHESIS") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME").expect("HOME is not set");
    let p = PathBuf::from(home).join(".cache/aims-evidence/venv-st/bin/st");
    assert!(
        p.exists(),
        "schemathesis is not installed: run ./scripts/test.sh (it installs it into {})",
        p.display()
    );
    p
}

#[test]
fn openapi_contract_holds_under_schemathesis() {
    let st = schemathesis();
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();

    // Some evidence first, so reads reach stored data and proofs have a tree to prove against.
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("systems/fraud/model")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]).unwrap();
    std::fs::write(
        repo.join("systems/fraud/model/README.md"),
        "---\nlicense: apache-2.0\nlibrary_name: sklearn\n---\n# fraud model\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]).unwrap();
    git(&repo, &["commit", "-q", "-m", "card"]).unwrap();
    let agent_token = server.token("agent", "e2e-agent").unwrap();
    std::fs::create_dir_all(tmp.path().join("agent")).unwrap();
    let cfg =
        write_agent_config(&tmp.path().join("agent"), &server.url, &agent_token, &repo).unwrap();
    let run = agent_once(&cfg, &[], Duration::from_secs(60)).unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    // An admin token may call every operation, so the checks reach past authorisation.
    let admin = server.token("admin", "schemathesis").unwrap();
    // A batch over the record limit is refused with 413 (like an oversized body), which
    // schemathesis does not count as a rejection unless told.
    let config = tmp.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        "[checks.negative_data_rejection]\n\
         expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(&st)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/v1/openapi.json", server.url))
        .args(["--header", &format!("Authorization: Bearer {admin}")])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--max-examples", "60"])
        // One worker: with several, schemathesis 4.x on CPython 3.11 sometimes fails inside its
        // own schema walker ("AST constructor recursion depth mismatch"), not in our server.
        .args(["--workers", "1"])
        .env("NO_COLOR", "1")
        // Its cache directory (.schemathesis/) goes to the scratch directory, not the clone.
        .current_dir(tmp.path())
        .output()
        .expect("running schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "schemathesis took {:.1}s; summary:\n{}",
        started.elapsed().as_secs_f64(),
        report
            .lines()
            .skip_while(|l| !l.contains("SUMMARY"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}\n--- server log ---\n{}",
        server.logs()
    );
    assert!(report.contains("passed"), "{report}");
    let logs = server.logs();
    assert!(
        !logs.contains("panicked") && !logs.contains(" ERROR "),
        "the server logged errors under schemathesis:\n{logs}"
    );
}
