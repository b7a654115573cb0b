//! The demo: a server on SQLite, the seed pipeline as a real git repository, one agent run, a
//! dataset card changed after approval and a second run; then the dashboard URL and a per-system
//! summary, serving until Ctrl-C.

// Standard output is this command's interface (addresses, tokens, summaries).
#![allow(clippy::print_stdout)]

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use aims_e2e::{
    DEMO_AGENT, ServerProcess, agent_once, http, seeds, workspace_root, write_agent_config_as,
};

#[tokio::main]
async fn main() -> Result<()> {
    let root = workspace_root();
    let work = std::env::var("AIMS_DEMO_DIR").map_or_else(|_| root.join(".demo"), Into::into);
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;
    let listen = std::env::var("AIMS_DEMO_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let database = format!("sqlite://{}", work.join("aims.db").display());
    eprintln!(
        "==> starting aims-server on {listen} (SQLite at {})",
        work.join("aims.db").display()
    );
    let mut server = match ServerProcess::start_with(&work.join("server"), &database, &listen, &[])
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("    {listen} is not available ({e}); using a free port instead");
            ServerProcess::start_with(&work.join("server"), &database, "127.0.0.1:0", &[])?
        }
    };
    // The token is named after the agent ID, which `token create` binds it to.
    let agent_token = server.token("agent", DEMO_AGENT)?;
    let viewer = server.token("viewer", "compliance-lead")?;

    let repo = work.join("pipeline.git-work");
    eprintln!(
        "==> building the demo pipeline repository from seeds/ at {}",
        repo.display()
    );
    seeds::build_repo(&repo)?;
    let cfg = write_agent_config_as(&work, DEMO_AGENT, &server.url, &agent_token, &repo)?;

    eprintln!("==> aims-agent once (first look at the pipeline)");
    let run = agent_once(&cfg, &[], Duration::from_secs(300))?;
    eprint!("{}", run.stderr);
    if run.code != Some(0) {
        bail!("the agent failed; server log:\n{}", server.logs());
    }
    eprintln!("==> a data scientist updates the churn dataset card after the model was approved");
    seeds::apply_changes(&repo)?;
    eprintln!("==> aims-agent once (second look)");
    let run = agent_once(&cfg, &[], Duration::from_secs(300))?;
    eprint!("{}", run.stderr);
    if run.code != Some(0) {
        bail!("the agent failed; server log:\n{}", server.logs());
    }

    let client = http()?;
    let systems: Value = client
        .get(format!("{}/v1/systems", server.url))
        .bearer_auth(&viewer)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let findings: Value = client
        .get(format!("{}/v1/findings", server.url))
        .bearer_auth(&viewer)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!();
    println!("AI system            fresh stale drifted missing  evidence");
    for s in systems["systems"].as_array().into_iter().flatten() {
        let c = &s["controls"];
        let n = |v: &Value| v.as_u64().unwrap_or(0);
        println!(
            "{:<20} {:>5} {:>5} {:>7} {:>7}  {:>8}",
            s["id"].as_str().unwrap_or("?"),
            n(&c["fresh"]),
            n(&c["stale"]),
            n(&c["drifted"]),
            n(&c["missing"]),
            n(&s["evidence"])
        );
    }
    println!();
    println!("Findings:");
    for f in findings["findings"].as_array().into_iter().flatten() {
        println!(
            "  [{}] {} {}: {}",
            f["kind"].as_str().unwrap_or("?"),
            f["system"].as_str().unwrap_or("?"),
            f["controls"]
                .as_array()
                .map(|c| c
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","))
                .unwrap_or_default(),
            f["message"].as_str().unwrap_or("")
        );
    }
    println!();
    println!("Dashboard: {}/?token={viewer}", server.url);
    println!(
        "API:       curl -H 'Authorization: Bearer {viewer}' {}/v1/systems",
        server.url
    );
    println!("Serving until Ctrl-C (data in {}).", work.display());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.stop();
    Ok(())
}
