//! The configuration files and examples the project ships, read the way users get them: the
//! agent examples in `deploy/examples/`, the Kubernetes manifests in `deploy/k8s/`, the Helm
//! chart's `values.yaml`, and the fenced YAML blocks of the README and ARCHITECTURE.md. Used by
//! `tests/tests/e2e/deploy_files.rs` (the deployment files without a cluster) and `tests/tests/e2e/examples.rs`
//! (every agent configuration example through `aims-agent validate`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_yaml::Value;

use crate::workspace_root;

/// `deploy/`.
pub fn deploy_dir() -> PathBuf {
    workspace_root().join("deploy")
}

/// The Helm chart, `deploy/helm/aims-evidence/`.
pub fn chart_dir() -> PathBuf {
    deploy_dir().join("helm/aims-evidence")
}

/// A file's text, with its path in the error.
pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The files directly in `dir` whose names end in `suffix`, sorted.
pub fn files(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let p = entry?.path();
        if p.is_file() && p.to_string_lossy().ends_with(suffix) {
            v.push(p);
        }
    }
    v.sort();
    Ok(v)
}

/// Every YAML document in `text` (empty documents skipped); `what` names it in errors.
pub fn documents(text: &str, what: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let v = <Value as serde::Deserialize>::deserialize(de)
            .with_context(|| format!("{what}: document {i}"))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

/// The string at a path of mapping keys, if there is one.
pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for k in path {
        cur = cur.get(*k)?;
    }
    cur.as_str()
}

/// Every document of `deploy/k8s/*.yaml`, with the name of the file it came from.
pub fn k8s_documents() -> Result<Vec<(String, Value)>> {
    let mut all = Vec::new();
    for f in files(&deploy_dir().join("k8s"), ".yaml")? {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let docs = documents(&read(&f)?, &name)?;
        if docs.is_empty() {
            bail!("{name} has no documents");
        }
        all.extend(docs.into_iter().map(|d| (name.clone(), d)));
    }
    Ok(all)
}

/// `data.KEY` of the ConfigMap called `name` among `docs`.
pub fn configmap_entry(docs: &[(String, Value)], name: &str, key: &str) -> Result<String> {
    docs.iter()
        .find(|(_, d)| {
            str_at(d, &["kind"]) == Some("ConfigMap")
                && str_at(d, &["metadata", "name"]) == Some(name)
        })
        .and_then(|(_, d)| str_at(d, &["data", key]))
        .map(str::to_owned)
        .with_context(|| format!("ConfigMap {name} has no {key}"))
}

/// The agent configuration of the plain manifests: `agent.yaml` of the ConfigMap
/// `aims-evidence-agent` in `deploy/k8s/`.
pub fn k8s_agent_config() -> Result<String> {
    configmap_entry(&k8s_documents()?, "aims-evidence-agent", "agent.yaml")
}

/// The Helm chart's `values.yaml`.
pub fn chart_values() -> Result<Value> {
    let path = chart_dir().join("values.yaml");
    serde_yaml::from_str(&read(&path)?).with_context(|| format!("parsing {}", path.display()))
}

/// The agent configuration the chart renders as-is: `agent.config` of `values.yaml`, as YAML.
pub fn chart_agent_config() -> Result<String> {
    let values = chart_values()?;
    let config = &values["agent"]["config"];
    if !config.is_mapping() {
        bail!("values.yaml has no agent.config mapping");
    }
    Ok(serde_yaml::to_string(config)?)
}

/// The bodies of the fenced code blocks of a Markdown text whose info string starts with
/// `lang` (e.g. ```` ```yaml ````), in order.
pub fn fenced_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    // Inside a block: its fence, and its body when it is one of ours (None: skipping it).
    let mut open: Option<(String, Option<String>)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                let fence: String = trimmed.chars().take_while(|c| *c == '`').collect();
                if fence.len() >= 3 {
                    let info = trimmed[fence.len()..].split_whitespace().next();
                    let body = (info == Some(lang)).then(String::new);
                    open = Some((fence, body));
                }
            }
            Some((fence, body)) => {
                let closes = trimmed.starts_with(fence.as_str())
                    && trimmed.trim_end().chars().all(|c| c == '`');
                if closes {
                    if let Some(b) = body.take() {
                        out.push(b);
                    }
                    open = None;
                } else if let Some(b) = body {
                    b.push_str(line);
                    b.push('\n');
                }
            }
        }
    }
    out
}

/// One agent configuration example the project ships.
#[derive(Clone, Debug)]
pub struct AgentExample {
    /// Where it comes from, for messages (`deploy/examples/agent-s3.yaml`,
    /// `README.md block 1`, …).
    pub name: String,
    /// The shipped file itself, when the example is a whole file.
    pub file: Option<PathBuf>,
    /// A file name with the right extension for the loader (`agent.yaml`, `agent.toml`).
    pub file_name: String,
    /// Its text.
    pub text: String,
}

/// Whether a fenced YAML block is an agent configuration: it names `version: 1` and `sources:`.
pub fn is_agent_config_block(block: &str) -> bool {
    block.lines().any(|l| l.trim() == "version: 1")
        && block
            .lines()
            .any(|l| l.trim_start().starts_with("sources:"))
}

/// Every agent configuration example the project ships: the agent files in `deploy/examples/`
/// (`agent*.yaml`, `agent*.yml`, `agent*.toml`), every fenced YAML block of `README.md` and
/// `ARCHITECTURE.md` that is an agent configuration, the ConfigMap of `deploy/k8s/` and the Helm
/// chart's `agent.config`.
pub fn agent_examples() -> Result<Vec<AgentExample>> {
    let root = workspace_root();
    let mut out = Vec::new();
    let examples = deploy_dir().join("examples");
    for f in files(&examples, "")? {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_agent = name.starts_with("agent")
            && [".yaml", ".yml", ".toml"]
                .iter()
                .any(|ext| name.ends_with(ext));
        if !is_agent {
            continue;
        }
        out.push(AgentExample {
            name: format!("deploy/examples/{name}"),
            file_name: name.clone(),
            text: read(&f)?,
            file: Some(f),
        });
    }
    for doc in ["README.md", "ARCHITECTURE.md"] {
        let text = read(&root.join(doc))?;
        for (i, block) in fenced_blocks(&text, "yaml").into_iter().enumerate() {
            if is_agent_config_block(&block) {
                out.push(AgentExample {
                    name: format!("{doc} yaml block {}", i + 1),
                    file: None,
                    file_name: "agent.yaml".into(),
                    text: block,
                });
            }
        }
    }
    out.push(AgentExample {
        name: "deploy/k8s/20-agent.yaml ConfigMap aims-evidence-agent".into(),
        file: None,
        file_name: "agent.yaml".into(),
        text: k8s_agent_config()?,
    });
    out.push(AgentExample {
        name: "deploy/helm/aims-evidence/values.yaml agent.config".into(),
        file: None,
        file_name: "agent.yaml".into(),
        text: chart_agent_config()?,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_blocks_of_one_language() {
        let md =
            "text\n```yaml\na: 1\n```\n\n```sh\nls\n```\n````yaml title\nb: 2\n```\nc: 3\n````\n";
        assert_eq!(
            fenced_blocks(md, "yaml"),
            vec!["a: 1\n".to_owned(), "b: 2\n```\nc: 3\n".to_owned()]
        );
        assert_eq!(fenced_blocks(md, "sh"), vec!["ls\n".to_owned()]);
        assert!(is_agent_config_block("version: 1\nsources:\n  - {}\n"));
        assert!(!is_agent_config_block("version: 1\nlisten: x\n"));
    }
}
