//! `aims-agent run`: keeps polling, serves Prometheus metrics, and stops cleanly on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aims_e2e::{ServerProcess, bin, http};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn run_mode_serves_metrics_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&tmp.path().join("server")).unwrap();
    let token = server.token("agent", "runner").unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..3 {
        std::fs::write(
            data.join(format!("report-{i}.json")),
            format!("{{\"n\": {i}}}"),
        )
        .unwrap();
    }
    let port = free_port();
    let cfg = tmp.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: 1\nagent: {{ id: runner }}\nserver: {{ url: \"{}\", token: \"{token}\" }}\n\
             spool_dir: \"{}\"\nmetrics_listen: \"127.0.0.1:{port}\"\nsources:\n  \
             - {{ id: reports, type: dir, path: \"{}\", system: demo, interval_secs: 1 }}\n",
            server.url,
            tmp.path().join("spool").display(),
            data.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(bin("aims-agent").unwrap())
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        if let Ok(r) = http().unwrap().get(&url).send().await {
            let t = r.text().await.unwrap();
            if metric(&t, "aims_agent_records_shipped_total") == Some(3.0) {
                break t;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not ship 3 records within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(metric(&text, "aims_agent_spool_depth"), Some(0.0), "{text}");
    assert!(
        metric(&text, "aims_agent_bytes_hashed_total{source=\"reports\"}").unwrap() > 0.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "aims_agent_artifacts_fetched_total{source=\"reports\"}"
        ),
        Some(3.0),
        "{text}"
    );

    // A new file is picked up by the next cycle without restarting.
    std::fs::write(data.join("report-new.json"), "{\"n\": 9}").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = http()
            .unwrap()
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metric(&t, "aims_agent_records_shipped_total") == Some(4.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new file was not shipped: {t}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // SIGTERM: a prompt, clean exit.
    let stopped = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "agent exited with {status}");
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "agent did not stop within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
