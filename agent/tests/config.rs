//! Configuration fixtures: YAML and TOML, unknown keys, duplicate ids, environment overrides.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a panic is a failure

use std::collections::HashMap;
use std::path::PathBuf;

use aims_agent::config::{AgentConfig, ConfigError};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load(name: &str) -> Result<AgentConfig, ConfigError> {
    load_env(name, &[])
}

fn load_env(name: &str, env: &[(&str, &str)]) -> Result<AgentConfig, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let cfg = AgentConfig::load_with_env(&fixture(name), &env)?;
    cfg.validate()?;
    Ok(cfg)
}

fn err(name: &str) -> String {
    load(name).unwrap_err().to_string()
}

#[test]
fn design_example_yaml_loads() {
    let cfg = load("agent.yaml").unwrap();
    assert_eq!(cfg.version, 1);
    assert_eq!(cfg.agent.id, "cluster-a");
    assert_eq!(cfg.server.url, "http://127.0.0.1:8080");
    assert_eq!(
        cfg.server.token_file.as_deref(),
        Some(std::path::Path::new("/var/run/secrets/aims/token"))
    );
    assert_eq!(cfg.server.timeout_secs, 30);
    assert_eq!(cfg.max_concurrent_fetches, 4);
    assert_eq!(cfg.batch_size, 500);
    let ids: Vec<&str> = cfg.sources.iter().map(|s| s.id()).collect();
    assert_eq!(
        ids,
        [
            "ml-repo",
            "local-reports",
            "registry",
            "evidence-bucket",
            "gh"
        ]
    );
    assert_eq!(cfg.sources[0].interval_secs(), 300);
    assert_eq!(
        cfg.cursor_path("ml-repo"),
        PathBuf::from("/var/lib/aims-agent/cursors/ml-repo.json")
    );
}

#[test]
fn toml_loads_with_all_fields() {
    let cfg = load("agent.toml").unwrap();
    assert_eq!(cfg.agent.id, "cluster-b");
    assert_eq!(cfg.server.token_env.as_deref(), Some("AIMS_TOKEN"));
    assert_eq!(cfg.server.timeout_secs, 10);
    assert_eq!(cfg.max_concurrent_fetches, 2);
    assert_eq!(cfg.batch_size, 100);
    assert!(cfg.catalog_dir.is_some());
    assert!(cfg.server.ca_file.is_some());
    assert_eq!(cfg.sources.len(), 2);
    assert_eq!(cfg.sources[1].interval_secs(), 60);
}

#[test]
fn unknown_keys_are_rejected_at_every_level() {
    let e = err("unknown_key.yaml");
    assert!(e.contains("unknown_key.yaml"), "{e}");
    assert!(e.contains("tiemout_secs"), "{e}");
    let e = err("unknown_top_key.toml");
    assert!(e.contains("spool_size"), "{e}");
    let e = err("unknown_source_key.yaml");
    assert!(e.contains("recursive"), "{e}");
}

#[test]
fn duplicate_source_ids_are_rejected() {
    let e = err("duplicate_source.yaml");
    assert!(e.contains("duplicate_source.yaml"), "{e}");
    assert!(e.contains("sources[1].id"), "{e}");
    assert!(e.contains("duplicate"), "{e}");
}

#[test]
fn invalid_values_name_file_field_and_reason() {
    let e = err("bad_version.yaml");
    assert!(
        e.contains("bad_version.yaml: version: unsupported version 2"),
        "{e}"
    );
    let e = err("bad_url.yaml");
    assert!(e.contains("server.url"), "{e}");
    assert!(e.contains("http or https"), "{e}");
    let e = err("bad_agent_id.yaml");
    assert!(e.contains("agent.id"), "{e}");
    let e = err("bad_source.yaml");
    assert!(e.contains("sources[0].system"), "{e}");
    let e = err("two_tokens.yaml");
    assert!(
        e.contains("exactly one of token, token_file, token_env"),
        "{e}"
    );
    let e = err("no_token.yaml");
    assert!(e.contains("found 0"), "{e}");
}

#[test]
fn env_overrides_token_and_url() {
    let cfg = load_env(
        "no_token.yaml",
        &[
            ("AIMS_AGENT__SERVER__TOKEN", "from-env"),
            ("AIMS_AGENT__SERVER__URL", "https://collector.example:8443"),
            ("AIMS_AGENT__AGENT__ID", "Cluster-Z"),
            ("AIMS_AGENT__SERVER__TIMEOUT_SECS", "7"),
            ("UNRELATED", "x"),
        ],
    )
    .unwrap();
    assert_eq!(cfg.server.url, "https://collector.example:8443");
    assert_eq!(
        cfg.server.resolve_token(&cfg.file).unwrap().expose(),
        "from-env"
    );
    assert_eq!(cfg.agent.id, "Cluster-Z", "values keep their case");
    assert_eq!(cfg.server.timeout_secs, 7);
    // The token never shows up in Debug output.
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains("from-env"), "{dbg}");
    assert!(dbg.contains("[redacted]"));
}

#[test]
fn env_token_wins_over_file_token_source() {
    let cfg = load_env("agent.yaml", &[("AIMS_AGENT__SERVER__TOKEN", "t0k")]).unwrap();
    assert_eq!(cfg.server.resolve_token(&cfg.file).unwrap().expose(), "t0k");
}

#[test]
fn unknown_env_key_is_rejected() {
    let e = load_env("agent.yaml", &[("AIMS_AGENT__SERVER__TOKNE", "x")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("tokne"), "{e}");
}

#[test]
fn token_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("token");
    std::fs::write(&tok, "secret-value\n").unwrap();
    let cfg_path = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg_path,
        format!(
            "version: 1\nagent: {{ id: a }}\nserver: {{ url: 'http://127.0.0.1:1', token_file: '{}' }}\nspool_dir: /tmp/x\n",
            tok.display()
        ),
    )
    .unwrap();
    let cfg = AgentConfig::load_with_env(&cfg_path, &HashMap::new()).unwrap();
    cfg.validate().unwrap();
    assert_eq!(
        cfg.server.resolve_token(&cfg.file).unwrap().expose(),
        "secret-value"
    );
}

#[test]
fn unsupported_extension_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("agent.ini");
    std::fs::write(&p, "x").unwrap();
    let e = AgentConfig::load_with_env(&p, &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("extension"), "{e}");
}

#[test]
fn plain_http_to_a_remote_server_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, url: &str, extra: &str| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            format!(
                "version: 1\nagent: {{ id: a }}\nserver: {{ url: \"{url}\", token: t{extra} }}\n\
                 spool_dir: /tmp/x\nsources:\n  - {{ id: d, type: dir, path: /tmp, system: s }}\n"
            ),
        )
        .unwrap();
        p
    };
    let remote = write("remote.yaml", "http://aims.example.com:8080", "");
    let err = aims_agent::config::AgentConfig::load_and_validate(&remote)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("server.url") && err.contains("allow_insecure_http"),
        "{err}"
    );
    let allowed = write(
        "allowed.yaml",
        "http://aims.example.com:8080",
        ", allow_insecure_http: true",
    );
    aims_agent::config::AgentConfig::load_and_validate(&allowed).unwrap();
    for ok in [
        "http://127.0.0.1:8080",
        "http://localhost:8080",
        "http://[::1]:8080",
        "https://aims.example.com",
    ] {
        let p = write("ok.yaml", ok, "");
        aims_agent::config::AgentConfig::load_and_validate(&p)
            .unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn otlp_endpoint_is_optional_and_checked() {
    assert_eq!(load("agent.yaml").unwrap().otlp_endpoint, None);
    let cfg = load_env(
        "agent.yaml",
        &[("AIMS_AGENT__OTLP_ENDPOINT", "http://otel-collector:4318")],
    )
    .unwrap();
    assert_eq!(
        cfg.otlp_endpoint.as_deref(),
        Some("http://otel-collector:4318")
    );
    let e = load_env(
        "agent.yaml",
        &[("AIMS_AGENT__OTLP_ENDPOINT", "otel-collector:4317")],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("otlp_endpoint"), "{e}");
}
