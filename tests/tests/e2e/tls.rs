//! TLS end to end: `aims-server serve` with `tls.cert`/`tls.key` terminates HTTPS with rustls;
//! an agent that trusts the CA through `server.ca_file` ships over it; an agent that does not
//! trust the CA refuses the server and ships nothing (its spool keeps the records); plain HTTP on
//! the TLS port gets no answer and the server keeps serving; a key that does not load stops the
//! server before it listens, with a message naming the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use aims_e2e::{ServerProcess, agent_once, bin, git, make_certs};

fn agent_config(
    dir: &Path,
    url: &str,
    token: &str,
    repo: &Path,
    ca: Option<&Path>,
) -> std::path::PathBuf {
    let ca = ca.map_or(String::new(), |c| format!(", ca_file: \"{}\"", c.display()));
    let cfg = format!(
        "version: 1\nagent: {{ id: tls-agent }}\nserver: {{ url: \"{url}\", token: \"{token}\"{ca} }}\n\
         spool_dir: \"{spool}\"\nsources:\n  - {{ id: pipeline, type: git, path: \"{repo}\", \
         system_from_path: \"systems/{{system}}/**\", interval_secs: 60 }}\n",
        spool = dir.join("spool").display(),
        repo = repo.display(),
    );
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("agent.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn client(ca: Option<&Path>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_private_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certs(&certs).unwrap();
    let settings = tmp.path().join("server.yaml");
    std::fs::write(
        &settings,
        format!(
            "tls:\n  cert: \"{}\"\n  key: \"{}\"\n",
            certs.join("server.pem").display(),
            certs.join("server.key").display()
        ),
    )
    .unwrap();
    let dir = tmp.path().join("server");
    let database = format!("sqlite://{}", dir.join("aims.db").display());
    let settings_arg = settings.display().to_string();
    let server =
        ServerProcess::start_with(&dir, &database, "127.0.0.1:0", &["--config", &settings_arg])
            .unwrap();
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "the server announces https: {}",
        server.url
    );
    let ca = certs.join("ca.pem");
    let agent_token = server.token("agent", "tls-agent").unwrap();
    let viewer = server.token("viewer", "viewer").unwrap();

    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("systems/fraud/model")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]).unwrap();
    std::fs::write(
        repo.join("systems/fraud/model/README.md"),
        "---\nlicense: apache-2.0\nlibrary_name: sklearn\n---\n# fraud model\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]).unwrap();
    git(&repo, &["commit", "-q", "-m", "model card"]).unwrap();

    // Without the CA the agent refuses the server's certificate and keeps its records spooled.
    let untrusting = agent_config(
        &tmp.path().join("a1"),
        &server.url,
        &agent_token,
        &repo,
        None,
    );
    let run = agent_once(&untrusting, &[], Duration::from_secs(60)).unwrap();
    assert_ne!(run.code, Some(0), "shipping must fail: {}", run.stderr);
    assert!(
        run.stderr.to_lowercase().contains("certificate"),
        "the error names the certificate problem: {}",
        run.stderr
    );

    // Plain HTTP on the TLS port: no HTTP answer; the server keeps serving.
    let plain = server.url.replacen("https://", "http://", 1);
    let r = client(None).get(format!("{plain}/healthz")).send().await;
    assert!(r.is_err(), "plain HTTP must not be answered: {r:?}");

    // With the CA file it ships over HTTPS.
    let trusting = agent_config(
        &tmp.path().join("a2"),
        &server.url,
        &agent_token,
        &repo,
        Some(&ca),
    );
    let run = agent_once(&trusting, &[], Duration::from_secs(60)).unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let http = client(Some(&ca));
    let v: serde_json::Value = http
        .get(format!("{}/v1/systems", server.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let systems: Vec<&str> = v["systems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(systems, ["fraud"], "{v}");

    // The untrusting agent's spool still holds its records: nothing was marked shipped.
    let spooled = std::fs::read_dir(tmp.path().join("a1/spool"))
        .unwrap()
        .flatten()
        .count();
    assert!(spooled > 0, "the failed agent keeps its spool");

    // A client that does not trust the CA cannot talk to it either.
    assert!(
        client(None)
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .is_err()
    );
}

#[test]
fn an_unusable_key_stops_the_server_before_it_listens() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certs(&certs).unwrap();
    std::fs::write(certs.join("broken.key"), "-----BEGIN NOTHING-----\n").unwrap();
    let settings = tmp.path().join("server.yaml");
    std::fs::write(
        &settings,
        format!(
            "tls:\n  cert: \"{}\"\n  key: \"{}\"\n",
            certs.join("server.pem").display(),
            certs.join("broken.key").display()
        ),
    )
    .unwrap();
    let out = Command::new(bin("aims-server").unwrap())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&settings)
        .arg("--database")
        .arg(format!("sqlite://{}", tmp.path().join("aims.db").display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains("listening on"), "{stdout}");
    assert!(
        stderr.contains("TLS private key") && stderr.contains("broken.key"),
        "{stderr}"
    );
}
