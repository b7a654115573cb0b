//! Every agent configuration example the project ships is accepted by the real binary:
//! `aims-agent validate --config FILE` exits 0 and prints `config ok: N sources` for the agent
//! files of `deploy/examples/`, the fenced YAML agent configurations of README.md and
//! ARCHITECTURE.md, the agent ConfigMap of `deploy/k8s/` and the Helm chart's `agent.config`
//! (collected by `aims_e2e::deploy::agent_examples`). The source types the examples name are
//! exactly the types the agent accepts, and each has an end-to-end test in `tests/sources.rs`.
//! `validate` refuses an unknown source type and an s3 source without any region with exit 2.
//!
//! `validate` builds every source as `once` would: the environment variables the examples name
//! in `token_env` (GITHUB_TOKEN, MLFLOW_TRACKING_TOKEN, AIMS_TOKEN) get dummy values. The server
//! token file the examples name (`/var/run/secrets/aims/token`) is not read by `validate`, so no
//! example needs a stand-in file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aims_agent::config::AgentConfig;
use aims_e2e::deploy::{AgentExample, agent_examples, deploy_dir, files, read};
use aims_e2e::{SOURCE_TYPE_TESTS, bin};

/// The end-to-end suite whose tests `SOURCE_TYPE_TESTS` names.
const SOURCES_RS: &str = include_str!("sources.rs");

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `aims-agent validate --config PATH` with `set` added to and `unset` removed from the
/// environment (and no `AIMS_AGENT__*` overrides), bounded to 60 s.
fn validate(path: &Path, set: &[(&str, &str)], unset: &[&str]) -> Output {
    let mut cmd = Command::new(bin("aims-agent").unwrap());
    cmd.args(["validate", "--config"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("AIMS_AGENT__") {
            cmd.env_remove(k);
        }
    }
    for k in unset {
        cmd.env_remove(k);
    }
    for (k, v) in set {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("aims-agent validate {} took over 60 s", path.display()))
        .unwrap();
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The names an example's `token_env` keys refer to (YAML `token_env: X`, TOML
/// `token_env = "X"`).
fn token_envs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("token_env") {
        let rest = text[i + "token_env".len()..].trim_start();
        let Some(rest) = rest.strip_prefix([':', '=']) else {
            continue;
        };
        let name: String = rest
            .trim_start()
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

/// The example as a file the loader reads: the shipped file itself, or its text written to
/// `dir` under a name with the right extension.
fn example_file(ex: &AgentExample, dir: &Path, i: usize) -> std::path::PathBuf {
    if let Some(f) = &ex.file {
        return f.clone();
    }
    let sub = dir.join(format!("example-{i}"));
    std::fs::create_dir_all(&sub).unwrap();
    let p = sub.join(&ex.file_name);
    std::fs::write(&p, &ex.text).unwrap();
    p
}

/// The source types of an example, read with the agent's own loader.
fn source_types(path: &Path) -> Vec<String> {
    let cfg = AgentConfig::load_and_validate(path).unwrap_or_else(|e| panic!("{e}"));
    cfg.sources
        .iter()
        .map(|s| s.source_type().to_string())
        .collect()
}

fn all_types() -> BTreeSet<String> {
    ["git", "dir", "mlflow", "s3", "github"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

#[test]
fn every_agent_example_validates_with_the_real_binary() {
    let examples = agent_examples().unwrap();
    let names: Vec<&str> = examples.iter().map(|e| e.name.as_str()).collect();
    // What the collection must have found (more is fine).
    for want in [
        "deploy/examples/agent-git.yaml",
        "deploy/examples/agent-github.yaml",
        "deploy/examples/agent-mlflow.yaml",
        "deploy/examples/agent-s3.yaml",
        "deploy/examples/agent.toml",
        "README.md yaml block 1",
        "deploy/k8s/20-agent.yaml ConfigMap aims-evidence-agent",
        "deploy/helm/aims-evidence/values.yaml agent.config",
    ] {
        assert!(names.contains(&want), "{want} not collected: {names:?}");
    }
    // No agent configuration in deploy/examples/ escapes the `agent*` naming.
    for f in files(&deploy_dir().join("examples"), "").unwrap() {
        let text = read(&f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if text.contains("sources:") || text.contains("[[sources]]") {
            assert!(
                examples
                    .iter()
                    .any(|e| e.file.as_deref() == Some(f.as_path())),
                "deploy/examples/{name} looks like an agent configuration but is not collected"
            );
        }
    }

    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, ex) in examples.iter().enumerate() {
        let path = example_file(ex, tmp.path(), i);
        let tokens = token_envs(&ex.text);
        let mut env: Vec<(&str, &str)> = tokens
            .iter()
            .map(|k| (k.as_str(), "dummy-token-for-validate"))
            .collect();
        env.push(("AWS_EC2_METADATA_DISABLED", "true"));
        let out = validate(&path, &env, &[]);
        let sources = source_types(&path).len();
        let want = format!("config ok: {sources} sources");
        if out.code != Some(0) || out.stdout.trim() != want {
            failures.push(format!(
                "{} (token_env: {tokens:?}): exit {:?}, stdout {:?}, stderr {:?}, want {want:?}",
                ex.name, out.code, out.stdout, out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn examples_name_every_source_type_and_each_has_an_end_to_end_test() {
    let tmp = tempfile::tempdir().unwrap();
    let mut named = BTreeSet::new();
    for (i, ex) in agent_examples().unwrap().iter().enumerate() {
        named.extend(source_types(&example_file(ex, tmp.path(), i)));
    }
    assert_eq!(named, all_types(), "source types named by the examples");

    // The types the agent accepts, from its own refusal of an unknown one.
    let cfg = tmp.path().join("unknown.yaml");
    std::fs::write(
        &cfg,
        "version: 1\nagent: { id: a }\nserver: { url: \"http://127.0.0.1:1\", token: t }\n\
         spool_dir: /nonexistent/spool\nsources:\n  - { id: x, type: ftp, path: /data, system: s }\n",
    )
    .unwrap();
    let out = validate(&cfg, &[], &[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let expected = out
        .stderr
        .split("expected one of")
        .nth(1)
        .unwrap_or_else(|| panic!("no list of accepted types in {:?}", out.stderr));
    let accepted: BTreeSet<String> = expected
        .split(',')
        .filter_map(|part| {
            let part = part.trim();
            let inner = part.strip_prefix('`')?;
            Some(inner[..inner.find('`')?].to_owned())
        })
        .collect();
    assert_eq!(accepted, all_types(), "source types the agent accepts");

    // Every type has a test in tests/sources.rs, and every named test exists there.
    let tested: BTreeSet<String> = SOURCE_TYPE_TESTS
        .iter()
        .map(|(t, _)| (*t).to_owned())
        .collect();
    assert_eq!(tested, all_types(), "source types tested end to end");
    for (ty, test) in SOURCE_TYPE_TESTS {
        let signature = format!("#[tokio::test(flavor = \"multi_thread\")]\nasync fn {test}() {{");
        assert!(
            SOURCES_RS.contains(&signature),
            "tests/sources.rs has no test {test} (for {ty})"
        );
    }
}

#[test]
fn validate_refuses_an_unknown_type_and_an_s3_source_without_a_region() {
    let tmp = tempfile::tempdir().unwrap();
    let head = "version: 1\nagent: { id: a }\nserver: { url: \"http://127.0.0.1:1\", token: t }\n\
                spool_dir: /nonexistent/spool\nsources:\n";

    let unknown = tmp.path().join("unknown.yaml");
    std::fs::write(
        &unknown,
        format!("{head}  - {{ id: x, type: ftp, path: /data, system: s }}\n"),
    )
    .unwrap();
    let out = validate(&unknown, &[], &[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains("unknown variant `ftp`"),
        "{}",
        out.stderr
    );

    // No region in the source, no endpoint, and none from the AWS chain: no environment, an
    // empty profile file, no instance metadata service.
    let s3 = tmp.path().join("s3.yaml");
    std::fs::write(
        &s3,
        format!("{head}  - {{ id: bucket, type: s3, bucket: ml-evidence, system: s }}\n"),
    )
    .unwrap();
    let empty = tmp.path().join("aws-empty");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_str().unwrap();
    let no_region = [
        ("AWS_CONFIG_FILE", empty),
        ("AWS_SHARED_CREDENTIALS_FILE", empty),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let unset = ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"];
    let started = Instant::now();
    let out = validate(&s3, &no_region, &unset);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains("\"bucket\"") && out.stderr.contains("no region"),
        "{}",
        out.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "validate took {:?}: it should not wait for a metadata service",
        started.elapsed()
    );

    // The same source is fine once the chain has a region.
    let mut with_region = no_region.to_vec();
    with_region.push(("AWS_REGION", "eu-west-1"));
    let out = validate(&s3, &with_region, &unset);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.trim(), "config ok: 1 sources");
}

#[test]
fn token_env_names_are_read_from_yaml_and_toml() {
    let yaml =
        "server: { url: x, token_env: AIMS_TOKEN }\n  - { id: gh, token_env: GITHUB_TOKEN }\n";
    let toml = "[server]\ntoken_env = \"MLFLOW_TRACKING_TOKEN\"\n";
    assert_eq!(
        token_envs(yaml),
        ["AIMS_TOKEN", "GITHUB_TOKEN"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    );
    assert_eq!(
        token_envs(toml),
        BTreeSet::from(["MLFLOW_TRACKING_TOKEN".to_owned()])
    );
}
