//! The auditor's side end to end: a real server and agent ship the seed pipeline, the bundle is
//! exported by the CLI and over HTTP, `aims-verify` accepts it against the pinned trust policy
//! and rejects every tampering, the README's standard commands (sha256sum, openssl, python3)
//! check it too, and a restarted server keeps its keys and extends its old checkpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aims_e2e::{ServerProcess, bin, http, run_seed_pipeline};
use aims_ledger::checkpoint::verify_checkpoint;
use aims_ledger::merkle::{self, Hash};
use aims_ledger::policy::TrustPolicy;
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub(crate) type Files = BTreeMap<String, Vec<u8>>;

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawning")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `aims-server keys show --database URL`: the policy an auditor pins.
pub(crate) fn trust_policy(database: &str) -> String {
    let out = run(Command::new(bin("aims-server").unwrap()).args([
        "keys",
        "show",
        "--database",
        database,
    ]));
    assert!(out.status.success(), "keys show: {}", text(&out.stderr));
    text(&out.stdout)
}

pub(crate) fn cli_export(database: &str, out: &Path, extra: &[&str]) {
    let o = run(Command::new(bin("aims-server").unwrap())
        .args(["export", "--database", database, "--out"])
        .arg(out)
        .args(extra));
    assert!(
        o.status.success(),
        "aims-server export: {}",
        text(&o.stderr)
    );
}

pub(crate) fn verify(bundle: &Path, trust: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let o = run(Command::new(bin("aims-verify").unwrap())
        .arg(bundle)
        .arg("--trust")
        .arg(trust)
        .args(extra));
    (o.status.code(), text(&o.stdout) + &text(&o.stderr))
}

pub(crate) fn read_bundle(bytes: &[u8]) -> Files {
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut files = Files::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header();
        assert_eq!(h.mode().unwrap(), 0o644);
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        files.insert(path, data);
    }
    files
}

pub(crate) fn write_bundle(files: &Files, path: &Path) {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    for (p, d) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        t.append_data(&mut h, p, d.as_slice()).unwrap();
    }
    std::fs::write(path, t.into_inner().unwrap().finish().unwrap()).unwrap();
}

/// Regenerates SHA256SUMS, so the manifest check passes and the deeper checks must catch it.
pub(crate) fn reseal(files: &mut Files) {
    files.remove("SHA256SUMS");
    let sums: String = files
        .iter()
        .map(|(p, d)| format!("{}  {p}\n", hex::encode(Sha256::digest(d))))
        .collect();
    files.insert("SHA256SUMS".into(), sums.into_bytes());
}

fn entry_lines(files: &Files) -> Vec<Vec<u8>> {
    let raw = &files["log/entries.jsonl"];
    raw[..raw.len() - 1]
        .split(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn set_lines(files: &mut Files, lines: &[Vec<u8>]) {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    files.insert("log/entries.jsonl".into(), out);
}

fn extract(bundle: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let o = run(Command::new("tar")
        .arg("-xzf")
        .arg(bundle)
        .arg("-C")
        .arg(dir));
    assert!(o.status.success(), "tar: {}", text(&o.stderr));
}

fn sh(dir: &Path, script: &str) -> (bool, String) {
    let o = run(Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("AIMS_SRC", aims_e2e::workspace_root())
        .current_dir(dir));
    (o.status.success(), text(&o.stdout) + &text(&o.stderr))
}

/// The first ```sh block of the README that contains `needle`.
fn readme_block(readme: &str, needle: &str) -> String {
    readme
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains(needle))
        .unwrap_or_else(|| panic!("README has no sh block with {needle}"))
        .to_owned()
}

/// The commands the bundle's README shows, run from the extracted bundle.
const SHA256SUMS: &str = "sha256sum -c --quiet SHA256SUMS";
const OPENSSL_LOG: &str = "openssl pkeyutl -verify -pubin -inkey trust/log.pub.pem -rawin -in checkpoint.body -sigfile checkpoint.sig";
const OPENSSL_CLOCK: &str = "openssl pkeyutl -verify -pubin -inkey trust/clock.pub.pem -rawin -in checkpoint.cosig.msg -sigfile checkpoint.cosig.sig";
/// The reference script comes with the sources (never from inside a bundle): `$AIMS_SRC` is
/// set to this checkout by [`sh`].
const MERKLE_PY: &str = "python3 \"$AIMS_SRC/server/verify/scripts/merkle.py\" .";

#[test]
fn export_verify_and_tamper() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let server = ServerProcess::start(&root.join("server")).unwrap();
    let viewer = run_seed_pipeline(&server, &root.join("work")).unwrap();
    let auditor = server.token("auditor", "external-auditor").unwrap();

    let trust = root.join("policy.txt");
    std::fs::write(&trust, trust_policy(&server.database)).unwrap();

    // CLI export while the server runs (SQLite WAL: a concurrent reader).
    let cli_bundle = root.join("bundle.tar.gz");
    cli_export(&server.database, &cli_bundle, &[]);
    let (code, out) = verify(&cli_bundle, &trust, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("VERIFIED"), "{out}");
    assert!(out.contains("PASS ledger:"), "{out}");
    assert!(out.contains("PASS oscal:"), "{out}");

    // The same over HTTP, with the roles enforced.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = http().unwrap();
    let get = |path: &str, token: &str| {
        let url = format!("{}{path}", server.url);
        rt.block_on(async {
            let r = client.get(url).bearer_auth(token).send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            (status, headers, r.bytes().await.unwrap().to_vec())
        })
    };
    let (status, headers, body) = get("/v1/export", &auditor);
    assert_eq!(status, 200, "{}", text(&body));
    assert_eq!(headers["content-type"], "application/gzip");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=bundle.tar.gz"
    );
    let http_bundle = root.join("http.tar.gz");
    std::fs::write(&http_bundle, &body).unwrap();
    let (code, out) = verify(&http_bundle, &trust, &["--json"]);
    assert_eq!(code, Some(0), "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["verified"], json!(true));
    assert_eq!(report["origin"], json!("aims-evidence.local/ledger"));
    let size = report["tree_size"].as_u64().unwrap();
    assert!(size >= 8, "{report}");
    assert!(report["cosigned_at"].as_str().unwrap().ends_with('Z'));
    let statuses: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "pass", "pass", "skipped", "pass", "pass", "skipped", "pass", "pass"
        ]
    );
    let (status, _, body) = get("/v1/export", &viewer);
    assert_eq!(status, 403, "{}", text(&body));
    let (status, _, _) = get("/v1/export?bogus=1", &auditor);
    assert_eq!(status, 400);
    let (status, _, _) = get("/v1/export?since=0", &auditor);
    assert_eq!(status, 400);
    let (status, _, _) = get("/v1/export?system=no-such-system", &auditor);
    assert_eq!(status, 404);
    let (status, _, body) = get("/v1/export/oscal", &auditor);
    assert_eq!(status, 200);
    let ar: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        ar["assessment-results"]["metadata"]["oscal-version"],
        json!("1.2.3")
    );

    // The bundle's layout.
    let files = read_bundle(&std::fs::read(&cli_bundle).unwrap());
    for f in [
        "MANIFEST.json",
        "SHA256SUMS",
        "trust/policy.txt",
        "trust/log.pub.pem",
        "trust/clock.pub.pem",
        "checkpoint",
        "checkpoint.body",
        "checkpoint.sig",
        "checkpoint.cosig.msg",
        "checkpoint.cosig.sig",
        "log/entries.jsonl",
        "oscal/assessment-results.json",
        "oscal/catalog.json",
        "catalog/controls.yaml",
        "README.md",
    ] {
        assert!(files.contains_key(f), "{f} missing: {:?}", files.keys());
    }
    assert_eq!(files["checkpoint.sig"].len(), 64);
    assert_eq!(files["checkpoint.cosig.sig"].len(), 64);
    let manifest: Value = serde_json::from_slice(&files["MANIFEST.json"]).unwrap();
    assert_eq!(manifest["scope"], json!("full"));
    assert_eq!(manifest["tree_size"].as_u64(), Some(size));
    let lines = entry_lines(&files);
    assert_eq!(lines.len() as u64, size);
    // A full export carries no receipts (the recomputed root proves every entry) unless asked.
    let proofs = files.keys().filter(|p| p.starts_with("proofs/")).count();
    assert_eq!(proofs, 0);
    let (status, _, body) = get("/v1/export?receipts=true", &auditor);
    assert_eq!(status, 200);
    let with_receipts = read_bundle(&body);
    let proofs = with_receipts
        .keys()
        .filter(|p| p.starts_with("proofs/"))
        .count();
    let m: Value = serde_json::from_slice(&with_receipts["MANIFEST.json"]).unwrap();
    assert_eq!(Some(proofs as u64), m["tree_size"].as_u64());
    assert_eq!(m["counts"]["proofs"].as_u64(), Some(proofs as u64));
    let (status, _, _) = get("/v1/export?receipts=maybe", &auditor);
    assert_eq!(status, 400);
    assert_eq!(
        text(&files["trust/policy.txt"]),
        std::fs::read_to_string(&trust).unwrap()
    );

    // A partial export of one system, with a consistency proof from size 1.
    let system = {
        let v: Value = serde_json::from_slice(&lines[0]).unwrap();
        v["record"]["system"].as_str().unwrap().to_owned()
    };
    let (status, _, body) = get(&format!("/v1/export?system={system}&since=1"), &auditor);
    assert_eq!(status, 200, "{}", text(&body));
    let partial = root.join("partial.tar.gz");
    std::fs::write(&partial, &body).unwrap();
    let first_cp = root.join("previous-checkpoint");
    let pfiles = read_bundle(&body);
    assert!(pfiles.contains_key(&format!("consistency/1-{size}.txt")));
    assert!(pfiles.contains_key("log/index.txt"));
    assert!(entry_lines(&pfiles).len() < lines.len());
    // The full bundle's checkpoint as the auditor's previous one (same size here; growth
    // between checkpoints is covered by the restart test).
    std::fs::write(&first_cp, &files["checkpoint"]).unwrap();
    let (code, out) = verify(
        &partial,
        &trust,
        &["--previous", first_cp.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("partial export of system"), "{out}");

    // --- tampering: each rebuilt bundle must fail with exit 1, naming what failed ------------
    let check_fails = |name: &str, files: &Files, trust: &Path, needles: &[&str]| {
        let p = root.join(format!("tampered-{name}.tar.gz"));
        write_bundle(files, &p);
        let (code, out) = verify(&p, trust, &[]);
        assert_eq!(code, Some(1), "{name}: {out}");
        for n in needles {
            assert!(out.contains(n), "{name}: output lacks {n:?}:\n{out}");
        }
    };

    // One byte changed in a record (SHA256SUMS regenerated).
    let mut f = files.clone();
    let mut ls = lines.clone();
    let target = ls.len() / 2;
    let pos = ls[target]
        .windows(10)
        .position(|w| w == b"\"locator\":")
        .unwrap()
        + 12;
    ls[target][pos] ^= 0x01;
    set_lines(&mut f, &ls);
    reseal(&mut f);
    check_fails(
        "byte",
        &f,
        &trust,
        // A full export has no receipts: the root shows the change, not its line.
        &["FAIL ledger: log/entries.jsonl: leaf hash not in tree — root mismatch"],
    );

    // The same change without regenerating SHA256SUMS is caught by the manifest check.
    let mut f2 = files.clone();
    set_lines(&mut f2, &ls);
    check_fails(
        "byte-sums",
        &f2,
        &trust,
        &["FAIL manifest: log/entries.jsonl: SHA-256 does not match SHA256SUMS"],
    );

    // An entry removed.
    let mut f = files.clone();
    let mut ls = lines.clone();
    ls.remove(2);
    set_lines(&mut f, &ls);
    reseal(&mut f);
    check_fails(
        "removed",
        &f,
        &trust,
        &[
            "FAIL ledger: log/entries.jsonl",
            &format!("{} entries but the checkpoint has {size}", size - 1),
        ],
    );

    // Two entries swapped.
    let mut f = files.clone();
    let mut ls = lines.clone();
    ls.swap(3, 4);
    set_lines(&mut f, &ls);
    reseal(&mut f);
    check_fails(
        "swapped",
        &f,
        &trust,
        &["FAIL ledger: log/entries.jsonl: leaf hash not in tree"],
    );

    // A byte of the checkpoint's log signature changed.
    let mut f = files.clone();
    let note = text(&f["checkpoint"]);
    let sig_line = note
        .lines()
        .find(|l| l.starts_with("\u{2014} aims-evidence.local/ledger "))
        .unwrap()
        .to_owned();
    let b64 = sig_line.rsplit(' ').next().unwrap();
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    raw[20] ^= 0x01;
    let bad_line = sig_line.replace(b64, &base64::engine::general_purpose::STANDARD.encode(&raw));
    f.insert(
        "checkpoint".into(),
        note.replace(&sig_line, &bad_line).into_bytes(),
    );
    reseal(&mut f);
    check_fails(
        "signature",
        &f,
        &trust,
        &["FAIL signatures: checkpoint: signature by aims-evidence.local/ledger does not verify"],
    );

    // A checkpoint signed by another key: the trust file of another server.
    let other_db = format!("sqlite://{}", root.join("other").join("aims.db").display());
    std::fs::create_dir_all(root.join("other")).unwrap();
    let other_trust = root.join("other-policy.txt");
    std::fs::write(&other_trust, trust_policy(&other_db)).unwrap();
    assert_ne!(
        std::fs::read_to_string(&other_trust).unwrap(),
        std::fs::read_to_string(&trust).unwrap()
    );
    check_fails(
        "other-key",
        &files,
        &other_trust,
        &["FAIL signatures: checkpoint: not signed by the pinned log key"],
    );

    // Missing bundle, unreadable trust file: exit 2.
    let (code, out) = verify(&root.join("missing.tar.gz"), &trust, &[]);
    assert_eq!(code, Some(2), "{out}");
    let (code, out) = verify(&cli_bundle, &root.join("no-policy.txt"), &[]);
    assert_eq!(code, Some(2), "{out}");

    // --- the README's standard commands ----------------------------------------------------------
    let x = root.join("extracted");
    extract(&cli_bundle, &x);
    let readme = text(&files["README.md"]);
    for cmd in [SHA256SUMS, OPENSSL_LOG, OPENSSL_CLOCK, MERKLE_PY] {
        let shown = cmd.replace(" --quiet", "");
        assert!(readme.contains(&shown), "README lacks {shown}");
        let (ok, out) = sh(&x, cmd);
        assert!(ok, "{cmd}: {out}");
    }
    // Issue 18 M6: the bundle ships no script and the README asks to run none from inside it.
    assert!(
        !files
            .keys()
            .any(|k| k.ends_with(".py") || k.ends_with(".sh"))
    );
    assert!(!readme.contains("verify/merkle.py"), "{readme}");
    // The README's block, exactly as written.
    let (ok, out) = sh(
        &x,
        &format!("set -e\n{}", readme_block(&readme, "sha256sum -c")),
    );
    assert!(ok, "README commands: {out}");
    assert!(out.contains("Signature Verified Successfully"), "{out}");
    assert!(out.contains("OK aims-evidence.local/ledger"), "{out}");
    // The README's recipe for a PEM from the pinned policy instead of the bundled copy.
    std::fs::copy(&trust, x.join("policy.txt")).unwrap();
    let recipe = readme_block(&readme, "pinned-log.pub.pem");
    let (ok, out) = sh(
        &x,
        &format!(
            "set -e\n{recipe}\nopenssl pkeyutl -verify -pubin -inkey pinned-log.pub.pem -rawin -in checkpoint.body -sigfile checkpoint.sig"
        ),
    );
    assert!(ok, "pinned PEM recipe: {out}");
    assert_eq!(
        std::fs::read(x.join("pinned-log.pub.pem")).unwrap(),
        std::fs::read(x.join("trust/log.pub.pem")).unwrap()
    );
    // The README's leaf-hash line matches the tree.
    let leaf_cmd = readme_block(&readme, "sed -n");
    let (ok, out) = sh(&x, &format!("N=1\n{leaf_cmd}"));
    assert!(ok);
    assert_eq!(
        out.split_whitespace().next().unwrap(),
        hex::encode(merkle::leaf_hash(&lines[0]))
    );

    // Partial bundle: merkle.py checks every line against its receipt.
    let px = root.join("extracted-partial");
    extract(&partial, &px);
    let (ok, out) = sh(&px, MERKLE_PY);
    assert!(ok, "{out}");
    assert!(out.contains("verify against their receipts"), "{out}");

    // Tampering breaks them: a changed entry fails sha256sum, and after regenerating the sums
    // it still fails merkle.py; a changed signature or message fails openssl.
    let mut entries = std::fs::read(x.join("log/entries.jsonl")).unwrap();
    entries[30] ^= 0x01;
    std::fs::write(x.join("log/entries.jsonl"), &entries).unwrap();
    assert!(!sh(&x, SHA256SUMS).0);
    let (ok, _) = sh(
        &x,
        "rm -f policy.txt pinned-log.pub.pem && find . -type f ! -name SHA256SUMS | sed 's|^\\./||' | sort | xargs sha256sum > ../SHA256SUMS.new && mv ../SHA256SUMS.new SHA256SUMS",
    );
    assert!(ok);
    assert!(sh(&x, SHA256SUMS).0);
    let (ok, out) = sh(&x, MERKLE_PY);
    assert!(!ok, "merkle.py accepted a changed entry: {out}");
    assert!(out.contains("FAIL"), "{out}");
    let mut sig = std::fs::read(x.join("checkpoint.sig")).unwrap();
    sig[0] ^= 0x01;
    std::fs::write(x.join("checkpoint.sig"), &sig).unwrap();
    assert!(!sh(&x, OPENSSL_LOG).0);
    let msg = std::fs::read_to_string(x.join("checkpoint.cosig.msg")).unwrap();
    std::fs::write(
        x.join("checkpoint.cosig.msg"),
        msg.replacen("time 1", "time 2", 1),
    )
    .unwrap();
    assert!(!sh(&x, OPENSSL_CLOCK).0);
}

// ---- restart -------------------------------------------------------------------------------------

fn record(i: usize) -> Value {
    let content = format!("restart artifact {i}\n");
    json!({
        "v": 1, "agent": "restart-agent", "source": {"id": "docs", "type": "dir"},
        "locator": format!("file:///data/reports/r{}.json", i % 3),
        "version": format!("v{i}"),
        "sha256": hex::encode(Sha256::digest(content.as_bytes())),
        "size": content.len(),
        "observed_at": "2026-11-20T10:00:00Z",
        "system": "restart-system", "kind": "unclassified",
    })
}

struct Head {
    size: u64,
    root: Hash,
    note: String,
}

fn head(note: &str, policy: &TrustPolicy) -> Head {
    let log = policy.log("aims-evidence.local/ledger").unwrap();
    let clock = policy.witness("clock").unwrap();
    let (cp, time) = verify_checkpoint(note, log, Some(clock)).unwrap();
    assert!(time.is_some());
    Head {
        size: cp.size,
        root: cp.root,
        note: note.to_owned(),
    }
}

#[test]
fn restart_keeps_keys_and_extends_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("server");
    let mut server = ServerProcess::start(&dir).unwrap();
    let agent = server.token("agent", "restart-agent").unwrap();
    let viewer = server.token("viewer", "v").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = http().unwrap();
    let post = |url: &str, records: Vec<Value>| {
        rt.block_on(async {
            let r = client
                .post(format!("{url}/v1/evidence"))
                .bearer_auth(&agent)
                .json(&json!({ "records": records }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
        })
    };
    let get_text = |url: String| {
        rt.block_on(async {
            let r = client.get(url).bearer_auth(&viewer).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
            r.text().await.unwrap()
        })
    };

    post(&server.url, (0..4).map(record).collect());
    let policy_text = trust_policy(&server.database);
    let policy = TrustPolicy::parse(&policy_text).unwrap();
    let before = head(
        &get_text(format!("{}/v1/log/checkpoint", server.url)),
        &policy,
    );
    assert_eq!(before.size, 4);
    let prev_cp = tmp.path().join("checkpoint-before");
    std::fs::write(&prev_cp, &before.note).unwrap();

    // Restart on the same database.
    server.stop();
    let database = server.database.clone();
    let server = ServerProcess::start_with(&dir, &database, "127.0.0.1:0", &[]).unwrap();
    assert_eq!(
        trust_policy(&database),
        policy_text,
        "keys changed on restart"
    );
    let after_restart = head(
        &get_text(format!("{}/v1/log/checkpoint", server.url)),
        &policy,
    );
    assert_eq!(
        (after_restart.size, after_restart.root),
        (before.size, before.root)
    );

    // New entries: the new checkpoint is consistent with the old one.
    post(&server.url, (4..9).map(record).collect());
    let after = head(
        &get_text(format!("{}/v1/log/checkpoint", server.url)),
        &policy,
    );
    assert_eq!(after.size, 9);
    let proof: Value = serde_json::from_str(&get_text(format!(
        "{}/v1/log/proof/consistency?from={}&to={}",
        server.url, before.size, after.size
    )))
    .unwrap();
    let hashes: Vec<Hash> = proof["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            base64::engine::general_purpose::STANDARD
                .decode(h.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap()
        })
        .collect();
    merkle::verify_consistency(before.size, after.size, &hashes, &before.root, &after.root)
        .unwrap();

    // The auditor's next bundle extends the checkpoint they kept (a partial one needs the
    // consistency proof, a full one recomputes the old root).
    let mut server = server;
    server.stop();
    let trust = tmp.path().join("policy.txt");
    std::fs::write(&trust, &policy_text).unwrap();
    let b1 = tmp.path().join("b1.tar.gz");
    let b2 = tmp.path().join("b2.tar.gz");
    cli_export(&database, &b1, &["--since", "4"]);
    cli_export(&database, &b2, &["--since", "4"]);
    assert_eq!(
        std::fs::read(&b1).unwrap(),
        std::fs::read(&b2).unwrap(),
        "the same checkpoint must export byte-identical bundles"
    );
    let (code, out) = verify(&b1, &trust, &["--previous", prev_cp.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("consistency/4-9.txt"), "{out}");
    let p = tmp.path().join("p.tar.gz");
    cli_export(
        &database,
        &p,
        &["--system", "restart-system", "--since", "4"],
    );
    let (code, out) = verify(&p, &trust, &["--previous", prev_cp.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");

    // An auditor holding a checkpoint from a different history is told the log forked.
    let other = tmp.path().join("other");
    let mut other_server = ServerProcess::start(&other).unwrap();
    let other_agent = other_server.token("agent", "restart-agent").unwrap();
    rt.block_on(async {
        let r = client
            .post(format!("{}/v1/evidence", other_server.url))
            .bearer_auth(&other_agent)
            .json(&json!({ "records": [record(7), record(8)] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    });
    other_server.stop();
    // Its checkpoint is signed by other keys: refused as --previous.
    let other_b = tmp.path().join("other.tar.gz");
    cli_export(&other_server.database, &other_b, &[]);
    let other_files = read_bundle(&std::fs::read(&other_b).unwrap());
    let foreign = tmp.path().join("foreign-checkpoint");
    std::fs::write(&foreign, &other_files["checkpoint"]).unwrap();
    let (code, out) = verify(&b1, &trust, &["--previous", foreign.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("--previous"), "{out}");
}
