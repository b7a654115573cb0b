//! Two `aims-server` replicas on one PostgreSQL database, two agents shipping to them at the same
//! time (with overlapping evidence): the ledger never forks, every record lands exactly once, and
//! both replicas serve the same checkpoint and the same status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use aims_e2e::{PgDb as Db, ServerProcess, agent_once, get_text};
use serde_json::Value;

fn write_files(dir: &std::path::Path, prefix: &str, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(
            dir.join(format!("{prefix}-{i:04}.json")),
            format!("{{\"kind\":\"note\",\"n\":{i}}}"),
        )
        .unwrap();
    }
}

fn agent_config(
    dir: &std::path::Path,
    id: &str,
    url: &str,
    token: &str,
    sources: &[(&str, &std::path::Path)],
) -> std::path::PathBuf {
    let mut cfg = format!(
        "version: 1\nagent: {{ id: {id} }}\nserver: {{ url: \"{url}\", token: \"{token}\" }}\nspool_dir: \"{}\"\nsources:\n",
        dir.join(format!("spool-{id}")).display()
    );
    for (sid, path) in sources {
        cfg.push_str(&format!(
            "  - {{ id: {sid}, type: dir, path: \"{}\", system: shared }}\n",
            path.display()
        ));
    }
    let p = dir.join(format!("{id}.yaml"));
    std::fs::write(&p, cfg).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_one_ledger() {
    let db = Db::create().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // Replicas share the log identity: the same key directory.
    // …and the same notification sink: each event must reach it once, from one replica.
    let (receiver, rurl) = crate::notify::start_receiver().await;
    let settings = tmp.path().join("server.yaml");
    std::fs::write(
        &settings,
        format!(
            "version: 1\nkeys_dir: \"{}\"\nnotifications:\n  - {{ type: webhook, name: hook, \
             url: \"{rurl}/hook\", secret: \"{}\", events: [finding.opened] }}\n",
            tmp.path().join("keys").display(),
            crate::notify::SECRET
        ),
    )
    .unwrap();
    let cfg = settings.to_str().unwrap();
    let a = ServerProcess::start_with(
        &tmp.path().join("a"),
        &db.url(),
        "127.0.0.1:0",
        &["--config", cfg],
    )
    .unwrap();
    let b = ServerProcess::start_with(
        &tmp.path().join("b"),
        &db.url(),
        "127.0.0.1:0",
        &["--config", cfg],
    )
    .unwrap();
    let token_a = a.token("agent", "agent-a").unwrap();
    let token_b = b.token("agent", "agent-b").unwrap();
    let viewer = a.token("viewer", "lead").unwrap();

    // Each agent has its own files plus the same shared folder (same source id and locators),
    // so both replicas receive identical records at the same time.
    let own_a = tmp.path().join("own-a");
    let own_b = tmp.path().join("own-b");
    let shared = tmp.path().join("shared");
    write_files(&own_a, "a", 300);
    write_files(&own_b, "b", 300);
    write_files(&shared, "s", 200);
    let cfg_a = agent_config(
        tmp.path(),
        "agent-a",
        &a.url,
        &token_a,
        &[("own-a", &own_a), ("shared", &shared)],
    );
    let cfg_b = agent_config(
        tmp.path(),
        "agent-b",
        &b.url,
        &token_b,
        &[("own-b", &own_b), ("shared", &shared)],
    );
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| agent_once(&cfg_a, &[], Duration::from_secs(180)).unwrap());
        let hb = s.spawn(|| agent_once(&cfg_b, &[], Duration::from_secs(180)).unwrap());
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert_eq!(ra.code, Some(0), "{}", ra.stderr);
    assert_eq!(rb.code, Some(0), "{}", rb.stderr);

    // 300 + 300 own files; the 200 shared files differ only in observed_at between the agents,
    // and the second copy of each is a re-observation of the same content: one leaf each.
    let cp_a = get_text(&format!("{}/v1/log/checkpoint", a.url), &viewer)
        .await
        .unwrap();
    let cp_b = get_text(&format!("{}/v1/log/checkpoint", b.url), &viewer)
        .await
        .unwrap();
    let size: u64 = cp_a.lines().nth(1).unwrap().parse().unwrap();
    assert_eq!(size, 800, "every artifact exactly once:\n{cp_a}");
    assert_eq!(
        cp_a.lines().take(3).collect::<Vec<_>>(),
        cp_b.lines().take(3).collect::<Vec<_>>(),
        "both replicas serve the same tree head"
    );

    // The tree did not fork: a consistency proof served by replica B from an early checkpoint to
    // the final head verifies against the roots, and both replicas report the same status.
    let v: Value = serde_json::from_str(
        &get_text(
            &format!("{}/v1/log/proof/consistency?from=1&to={size}", b.url),
            &viewer,
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(v["to"], size, "{v}");
    assert!(!v["hashes"].as_array().unwrap().is_empty());
    let strip = |s: &str| {
        let mut v: Value = serde_json::from_str(s).unwrap();
        for sys in v["systems"].as_array_mut().unwrap() {
            sys.as_object_mut().unwrap().remove("assessed_at");
        }
        v
    };
    // Each replica re-assesses the systems it ingested (within ~1 s) into the shared database,
    // so both converge on the same status; allow a few seconds for that.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let sa = loop {
        let sa = strip(
            &get_text(&format!("{}/v1/systems", a.url), &viewer)
                .await
                .unwrap(),
        );
        let sb = strip(
            &get_text(&format!("{}/v1/systems", b.url), &viewer)
                .await
                .unwrap(),
        );
        if sa == sb && sa["systems"][0]["evidence"] == 800 {
            break sa;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replicas disagree on status:\n{sa}\n{sb}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(sa["systems"][0]["evidence"], 800);

    // Notifications: both replicas assessed the same system, both run a sender; every finding
    // opened reached the receiver, each under one delivery id, delivered once.
    let findings: Value = serde_json::from_str(
        &get_text(&format!("{}/v1/findings", a.url), &viewer)
            .await
            .unwrap(),
    )
    .unwrap();
    let open: std::collections::BTreeSet<String> = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!open.is_empty(), "{findings}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = crate::notify::received(&receiver);
        let told: std::collections::BTreeSet<String> = got
            .iter()
            .filter(|g| g.answered == 200)
            .filter_map(|g| g.body["finding"]["id"].as_str().map(str::to_owned))
            .collect();
        if open.is_subset(&told) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{open:?} vs {told:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let both senders run a few more passes: nothing is sent twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = crate::notify::received(&receiver);
    let mut per_delivery: std::collections::BTreeMap<&str, usize> = Default::default();
    for g in got.iter().filter(|g| g.answered == 200) {
        assert!(g.signed_ok);
        *per_delivery.entry(g.delivery.as_str()).or_default() += 1;
    }
    assert!(
        per_delivery.values().all(|n| *n == 1),
        "a delivery sent twice: {per_delivery:?}"
    );
    let mut per_finding: std::collections::BTreeMap<String, usize> = Default::default();
    for g in got.iter().filter(|g| g.answered == 200) {
        if let Some(id) = g.body["finding"]["id"].as_str() {
            *per_finding.entry(id.to_owned()).or_default() += 1;
        }
    }
    assert!(
        per_finding.values().all(|n| *n == 1),
        "a finding told twice: {per_finding:?}"
    );
}
