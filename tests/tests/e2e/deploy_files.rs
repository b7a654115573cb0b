//! The deployment files in `deploy/` are checked without a cluster, Docker or Helm:
//! - `deploy/k8s/*.yaml`: every document parses and has `apiVersion`, `kind`, `metadata.name`;
//!   the agent and server configs embedded in ConfigMaps load with the real loaders, and the
//!   agent Deployment mounts the spool dir and token file its config names.
//! - the Helm chart: `Chart.yaml` and `values.yaml` parse; `agent.config` from `values.yaml` loads
//!   with `AgentConfig::load_and_validate`; every template has balanced `{{ }}` and block/`end`
//!   pairs, uses only `.Values` paths that exist in `values.yaml` and includes only templates
//!   defined in `_helpers.tpl`. With `helm` on PATH, `helm template` output is parsed too and must
//!   name the same objects as `deploy/k8s`.
//! - systemd units: `[Unit]`/`[Service]`/`[Install]`, `ExecStart`, a dedicated user, hardening.
//! - Dockerfiles: a `builder` stage, a final runtime stage, a non-root `USER`, real packages and
//!   COPY sources that exist.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use aims_agent::config::AgentConfig;
use aims_e2e::deploy::{self, str_at};
use aims_e2e::workspace_root;
use serde_yaml::Value;

fn deploy() -> PathBuf {
    deploy::deploy_dir()
}

fn chart() -> PathBuf {
    deploy::chart_dir()
}

fn read(path: &Path) -> String {
    deploy::read(path).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Files in `dir` ending in `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    deploy::files(dir, suffix).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Every YAML document in `text` (empty documents skipped).
fn documents(text: &str, what: &str) -> Vec<Value> {
    deploy::documents(text, what).unwrap_or_else(|e| panic!("{e:#}"))
}

/// (kind, name) of every object; panics on a document without apiVersion/kind/metadata.name.
fn object_ids(docs: &[Value], what: &str) -> BTreeSet<(String, String)> {
    let mut ids = BTreeSet::new();
    for (i, d) in docs.iter().enumerate() {
        let api = str_at(d, &["apiVersion"]).unwrap_or_default();
        let kind = str_at(d, &["kind"]).unwrap_or_default();
        let name = str_at(d, &["metadata", "name"]).unwrap_or_default();
        assert!(
            !api.is_empty() && !kind.is_empty() && !name.is_empty(),
            "{what}: document {i} lacks apiVersion/kind/metadata.name: {d:?}"
        );
        assert!(
            ids.insert((kind.to_owned(), name.to_owned())),
            "{what}: duplicate {kind}/{name}"
        );
    }
    ids
}

fn k8s_documents() -> Vec<(String, Value)> {
    let all = deploy::k8s_documents().unwrap_or_else(|e| panic!("{e:#}"));
    let files: BTreeSet<&str> = all.iter().map(|(f, _)| f.as_str()).collect();
    assert!(
        files.len() >= 3,
        "expected namespace, server and agent manifests"
    );
    all
}

fn write_temp(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn k8s_manifests_parse_and_are_complete() {
    let docs = k8s_documents();
    let values: Vec<Value> = docs.iter().map(|(_, d)| d.clone()).collect();
    let ids = object_ids(&values, "deploy/k8s");
    for want in [
        ("Namespace", "aims"),
        ("Deployment", "aims-evidence-server"),
        ("Service", "aims-evidence-server"),
        ("ConfigMap", "aims-evidence-server"),
        ("PersistentVolumeClaim", "aims-evidence-server-data"),
        ("Deployment", "aims-evidence-agent"),
        ("ConfigMap", "aims-evidence-agent"),
        ("PersistentVolumeClaim", "aims-evidence-agent-spool"),
    ] {
        assert!(
            ids.contains(&(want.0.to_owned(), want.1.to_owned())),
            "deploy/k8s lacks {}/{}",
            want.0,
            want.1
        );
    }
    for (file, d) in &docs {
        if str_at(d, &["kind"]) != Some("Namespace") {
            assert_eq!(
                str_at(d, &["metadata", "namespace"]),
                Some("aims"),
                "{file}: {:?} is not in namespace aims",
                str_at(d, &["metadata", "name"])
            );
        }
    }
}

fn configmap_entry(docs: &[(String, Value)], name: &str, key: &str) -> String {
    deploy::configmap_entry(docs, name, key).unwrap_or_else(|e| panic!("{e:#}"))
}

fn deployment<'a>(docs: &'a [(String, Value)], name: &str) -> &'a Value {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| {
            str_at(d, &["kind"]) == Some("Deployment")
                && str_at(d, &["metadata", "name"]) == Some(name)
        })
        .unwrap_or_else(|| panic!("no Deployment {name}"))
}

fn first_container(dep: &Value) -> &Value {
    &dep["spec"]["template"]["spec"]["containers"][0]
}

fn mount_paths(container: &Value) -> Vec<String> {
    container["volumeMounts"]
        .as_sequence()
        .expect("volumeMounts")
        .iter()
        .map(|m| m["mountPath"].as_str().expect("mountPath").to_owned())
        .collect()
}

#[test]
fn k8s_configmaps_load_with_the_real_loaders() {
    let docs = k8s_documents();
    let tmp = tempfile::tempdir().unwrap();

    let agent_yaml = configmap_entry(&docs, "aims-evidence-agent", "agent.yaml");
    let path = write_temp(tmp.path(), "agent.yaml", &agent_yaml);
    let cfg = AgentConfig::load_and_validate(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!cfg.sources.is_empty());
    // The Deployment mounts what the config names: the spool and the token file's directory.
    let agent = first_container(deployment(&docs, "aims-evidence-agent"));
    let mounts = mount_paths(agent);
    assert!(mounts.iter().any(|m| Path::new(m) == cfg.spool_dir));
    let token_dir = cfg.server.token_file.as_ref().unwrap().parent().unwrap();
    assert!(
        mounts.iter().any(|m| Path::new(m) == token_dir),
        "{mounts:?}"
    );
    assert!(mounts.iter().any(|m| m == "/etc/aims"));
    assert_eq!(
        agent["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );

    let server_yaml = configmap_entry(&docs, "aims-evidence-server", "server.yaml");
    let path = write_temp(tmp.path(), "server.yaml", &server_yaml);
    let settings = aims_server::Settings::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(settings.listen, "0.0.0.0:8080");
    let server = first_container(deployment(&docs, "aims-evidence-server"));
    let mounts = mount_paths(server);
    // The database and the keys live on the persistent volume.
    assert!(settings.keys_dir().starts_with("/var/lib/aims"));
    assert!(settings.database.starts_with("sqlite:///var/lib/aims/"));
    assert!(mounts.iter().any(|m| m == "/var/lib/aims"));
    assert_eq!(
        server["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        server["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
}

fn values() -> Value {
    deploy::chart_values().unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
fn chart_metadata_and_values_parse() {
    let chart_yaml: Value = serde_yaml::from_str(&read(&chart().join("Chart.yaml"))).unwrap();
    assert_eq!(str_at(&chart_yaml, &["apiVersion"]), Some("v2"));
    assert_eq!(str_at(&chart_yaml, &["name"]), Some("aims-evidence"));
    assert!(str_at(&chart_yaml, &["version"]).is_some());
    assert!(str_at(&chart_yaml, &["appVersion"]).is_some());

    let v = values();
    for p in [
        &["server", "image", "repository"][..],
        &["agent", "image", "repository"],
        &["server", "database", "url"],
        &["server", "database", "existingSecret"],
        &["agent", "token", "existingSecret"],
    ] {
        assert!(str_at(&v, p).is_some(), "values.yaml lacks {}", p.join("."));
    }
    assert_eq!(v["server"]["replicas"].as_u64(), Some(1));
    assert_eq!(
        str_at(&v, &["agent", "resources", "requests", "memory"]),
        Some("20Mi")
    );
}

#[test]
fn chart_agent_config_loads_with_the_real_loader() {
    let config = deploy::chart_agent_config().unwrap_or_else(|e| panic!("{e:#}"));
    let tmp = tempfile::tempdir().unwrap();
    let path = write_temp(tmp.path(), "agent.yaml", &config);
    let cfg = AgentConfig::load_and_validate(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!cfg.sources.is_empty());
    // The chart mounts the spool and the token Secret at these paths.
    assert_eq!(cfg.spool_dir, Path::new("/var/lib/aims-agent"));
    assert_eq!(
        cfg.server.token_file.as_deref(),
        Some(Path::new("/var/run/secrets/aims/token"))
    );
}

/// The `{{ … }}` actions of a template, trimmed of `-` markers and spaces.
fn actions(text: &str, what: &str) -> Vec<String> {
    assert_eq!(
        text.matches("{{").count(),
        text.matches("}}").count(),
        "{what}: unbalanced {{{{ }}}}"
    );
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .unwrap_or_else(|| panic!("{what}: unclosed {{{{"));
        let inner = &after[..end];
        assert!(!inner.contains("{{"), "{what}: nested {{{{ in {inner:?}");
        out.push(
            inner
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim()
                .to_owned(),
        );
        rest = &after[end + 2..];
    }
    out
}

/// Checks `if/range/with/define/block … end` nesting.
fn check_blocks(actions: &[String], what: &str) {
    let mut stack: Vec<&str> = Vec::new();
    for a in actions {
        if a.starts_with("/*") {
            assert!(a.ends_with("*/"), "{what}: unterminated comment {a:?}");
            continue;
        }
        let word = a.split_whitespace().next().unwrap_or_default();
        match word {
            "if" | "range" | "with" | "define" | "block" => stack.push(word),
            "else" => assert!(!stack.is_empty(), "{what}: else outside a block"),
            "end" => {
                stack
                    .pop()
                    .unwrap_or_else(|| panic!("{what}: end without a block"));
            }
            _ => {}
        }
    }
    assert!(stack.is_empty(), "{what}: unclosed blocks {stack:?}");
}

/// Every `.Values.a.b.c` path in `text`.
fn values_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(".Values.") {
        let tail = &text[i + ".Values.".len()..];
        let path: String = tail
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        let path = path.trim_end_matches('.').to_owned();
        if !path.is_empty() {
            out.insert(path);
        }
    }
    out
}

fn has_path(values: &Value, path: &str) -> bool {
    let mut cur = values;
    for k in path.split('.') {
        match cur.as_mapping().and_then(|m| m.get(k)) {
            Some(v) => cur = v,
            None => return false,
        }
    }
    true
}

/// Names in `include "…"` / `template "…"` (or `define "…"`) within `actions`.
fn quoted_after(actions: &[String], keyword: &str) -> BTreeSet<String> {
    let needle = format!("{keyword} \"");
    let mut out = BTreeSet::new();
    for a in actions {
        for (i, _) in a.match_indices(&needle) {
            let tail = &a[i + needle.len()..];
            if let Some(end) = tail.find('"') {
                out.insert(tail[..end].to_owned());
            }
        }
    }
    out
}

#[test]
fn chart_templates_are_balanced_and_reference_real_values_and_helpers() {
    let templates = chart().join("templates");
    let values = values();
    let helpers_text = read(&templates.join("_helpers.tpl"));
    let helper_actions = actions(&helpers_text, "_helpers.tpl");
    let defines = quoted_after(&helper_actions, "define");
    assert!(defines.contains("aims-evidence.fullname"), "{defines:?}");

    let mut checked = 0;
    let mut yaml_templates = 0;
    for f in files(&templates, "") {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let text = read(&f);
        let acts = actions(&text, &name);
        check_blocks(&acts, &name);
        for p in values_paths(&text) {
            assert!(
                has_path(&values, &p),
                "{name}: .Values.{p} is not in values.yaml"
            );
        }
        for kw in ["include", "template"] {
            for n in quoted_after(&acts, kw) {
                assert!(
                    defines.contains(&n),
                    "{name}: {kw} {n:?} is not defined in _helpers.tpl"
                );
            }
        }
        if name != "_helpers.tpl" {
            assert!(
                quoted_after(&acts, "define").is_empty(),
                "{name}: defines belong in _helpers.tpl"
            );
        }
        if name.ends_with(".yaml") {
            yaml_templates += 1;
        }
        checked += 1;
    }
    assert!(
        yaml_templates >= 8,
        "found only {yaml_templates} YAML templates"
    );
    assert!(checked >= 10, "found only {checked} templates");
}

#[test]
fn helm_template_renders_the_k8s_objects_when_helm_is_available() {
    let Ok(out) = Command::new("helm")
        .args(["template", "aims-evidence"])
        .arg(chart())
        .args(["--namespace", "aims"])
        .output()
    else {
        eprintln!("helm is not on PATH: skipping the rendering check");
        return;
    };
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = documents(&String::from_utf8_lossy(&out.stdout), "helm template");
    let ids = object_ids(&rendered, "helm template");
    let k8s: Vec<Value> = k8s_documents()
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| str_at(d, &["kind"]) != Some("Namespace"))
        .collect();
    assert_eq!(ids, object_ids(&k8s, "deploy/k8s"));
}

/// `[Section] -> [(key, value)]` of a systemd unit.
fn parse_unit(text: &str, what: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(s.to_owned());
            sections.entry(s.to_owned()).or_default();
            continue;
        }
        let section = current
            .as_ref()
            .unwrap_or_else(|| panic!("{what}:{}: key outside a section", n + 1));
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{what}:{}: not KEY=VALUE: {line:?}", n + 1));
        assert!(
            !k.trim().is_empty() && !k.contains(char::is_whitespace),
            "{what}:{}: bad key {k:?}",
            n + 1
        );
        sections
            .get_mut(section)
            .unwrap()
            .push((k.to_owned(), v.trim().to_owned()));
    }
    sections
}

fn get<'a>(section: &'a [(String, String)], key: &str) -> Option<&'a str> {
    section
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[test]
fn systemd_units_are_well_formed_and_hardened() {
    let dir = deploy().join("systemd");
    for (unit, binary, state) in [
        ("aims-server.service", "aims-server", "aims"),
        ("aims-agent.service", "aims-agent", "aims-agent"),
    ] {
        let sections = parse_unit(&read(&dir.join(unit)), unit);
        for s in ["Unit", "Service", "Install"] {
            assert!(sections.contains_key(s), "{unit}: no [{s}]");
        }
        let svc = &sections["Service"];
        let exec = get(svc, "ExecStart").unwrap_or_else(|| panic!("{unit}: no ExecStart"));
        let program = exec.split_whitespace().next().unwrap();
        assert!(
            program.starts_with('/') && program.ends_with(binary),
            "{unit}: ExecStart {exec:?}"
        );
        let user = get(svc, "User").unwrap_or_else(|| panic!("{unit}: no User"));
        assert!(user != "root" && user != "0", "{unit}: runs as root");
        assert_eq!(get(svc, "StateDirectory"), Some(state), "{unit}");
        assert_eq!(get(svc, "Restart"), Some("on-failure"), "{unit}");
        for (k, v) in [
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
        ] {
            assert_eq!(get(svc, k), Some(v), "{unit}: {k}");
        }
        assert!(
            get(svc, "EnvironmentFile").is_some(),
            "{unit}: no EnvironmentFile"
        );
        assert!(
            get(&sections["Install"], "WantedBy").is_some(),
            "{unit}: no WantedBy"
        );
    }
}

/// Dockerfile instructions with continuation lines joined: `(INSTRUCTION, arguments)`.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if buf.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if let Some(l) = line.strip_suffix('\\') {
            buf.push_str(l);
            buf.push(' ');
            continue;
        }
        buf.push_str(line);
        let (ins, args) = buf.split_once(char::is_whitespace).unwrap_or((&buf, ""));
        out.push((ins.to_ascii_uppercase(), args.trim().to_owned()));
        buf.clear();
    }
    out
}

fn workspace_packages() -> BTreeSet<String> {
    let root = workspace_root();
    let manifest: toml_like::Manifest = toml_like::members(&read(&root.join("Cargo.toml")));
    manifest
        .members
        .iter()
        .filter_map(|m| toml_like::package_name(&read(&root.join(m).join("Cargo.toml"))))
        .collect()
}

/// Just enough TOML reading for the workspace manifest (no toml crate in this workspace).
mod toml_like {
    pub struct Manifest {
        pub members: Vec<String>,
    }

    pub fn members(text: &str) -> Manifest {
        let start = text.find("members = [").expect("workspace members");
        let list = &text[start..];
        let list = &list[..list.find(']').expect("end of members")];
        Manifest {
            members: list
                .split('"')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect(),
        }
    }

    pub fn package_name(text: &str) -> Option<String> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|l| l.strip_suffix('"'))
            .map(str::to_owned)
    }
}

#[test]
fn dockerfiles_build_in_a_builder_stage_and_run_as_non_root() {
    let root = workspace_root();
    let packages = workspace_packages();
    assert!(packages.contains("aims-server"), "{packages:?}");
    for (file, binary) in [
        ("server.Dockerfile", "aims-server"),
        ("agent.Dockerfile", "aims-agent"),
    ] {
        let ins = instructions(&read(&deploy().join("docker").join(file)));
        let froms: Vec<&String> = ins
            .iter()
            .filter(|(i, _)| i == "FROM")
            .map(|(_, a)| a)
            .collect();
        assert!(froms.len() >= 2, "{file}: not multi-stage");
        assert!(
            froms[0].starts_with("rust:") && froms[0].to_ascii_lowercase().ends_with(" as builder"),
            "{file}: first stage {:?}",
            froms[0]
        );
        let last_from = ins.iter().rposition(|(i, _)| i == "FROM").unwrap();
        let runtime = &ins[last_from..];
        assert!(
            runtime[0].1.starts_with("debian:bookworm-slim"),
            "{file}: runtime {:?}",
            runtime[0].1
        );
        let user = runtime
            .iter()
            .rev()
            .find(|(i, _)| i == "USER")
            .map(|(_, a)| a.as_str())
            .unwrap_or_else(|| panic!("{file}: no USER in the final stage"));
        let uid = user.split(':').next().unwrap();
        assert!(uid != "root" && uid != "0", "{file}: USER {user}");
        assert!(
            runtime
                .iter()
                .any(|(i, a)| i == "COPY" && a.starts_with("--from=builder")),
            "{file}: nothing copied from the builder"
        );
        assert!(
            runtime
                .iter()
                .any(|(i, a)| i == "ENTRYPOINT" && a.contains(binary)),
            "{file}: ENTRYPOINT is not {binary}"
        );

        // The build uses cache mounts and names real packages.
        let build = ins
            .iter()
            .find(|(i, a)| i == "RUN" && a.contains("cargo build"))
            .map(|(_, a)| a)
            .unwrap_or_else(|| panic!("{file}: no cargo build"));
        assert!(
            build.contains("--mount=type=cache"),
            "{file}: no cache mount"
        );
        let words: Vec<&str> = build.split_whitespace().collect();
        let mut named = Vec::new();
        for w in words.windows(2) {
            if w[0] == "-p" {
                assert!(packages.contains(w[1]), "{file}: unknown package {}", w[1]);
                named.push(w[1]);
            }
        }
        assert!(named.contains(&binary), "{file}: does not build {binary}");

        // COPY sources from the build context exist.
        for (_, args) in ins.iter().filter(|(i, _)| i == "COPY") {
            if args.starts_with("--from") {
                continue;
            }
            let parts: Vec<&str> = args.split_whitespace().collect();
            for src in &parts[..parts.len() - 1] {
                assert!(root.join(src).exists(), "{file}: COPY source {src} missing");
            }
        }
        if file == "server.Dockerfile" {
            assert!(
                runtime.iter().any(|(i, a)| i == "EXPOSE" && a == "8080"),
                "{file}: no EXPOSE 8080"
            );
        } else {
            assert!(
                runtime
                    .iter()
                    .any(|(i, a)| i == "RUN" && a.contains(" git")),
                "{file}: git is not installed"
            );
        }
        assert!(
            runtime.iter().any(|(i, _)| i == "VOLUME"),
            "{file}: no VOLUME"
        );
    }
}
