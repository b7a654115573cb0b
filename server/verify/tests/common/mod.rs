//! Bundles built in the tests from aims-model primitives: a real tree, real keys, real receipts,
//! laid out as integrity.md §6.8 says (independently of the server's exporter).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use aims_ledger::checkpoint::{Checkpoint, SignedCheckpoint};
use aims_ledger::merkle::{self, MemoryHashStore};
use aims_ledger::note::{self, CosignatureSigner, Signer};
use aims_ledger::policy::TrustPolicy;
use aims_ledger::proof_file::TlogProof;
use aims_verify::{Bundle, Options, Report, Status, Trust};

pub const ORIGIN: &str = "aims.test/ledger";
pub const TIME: u64 = 1_800_000_000;

pub struct Keys {
    pub log: Signer,
    pub clock: CosignatureSigner,
}

pub fn keys(seed: u8) -> Keys {
    Keys {
        log: Signer::from_secret_bytes(ORIGIN, [seed; 32]).unwrap(),
        clock: CosignatureSigner::from_secret_bytes(&format!("{ORIGIN}/clock"), [seed + 100; 32])
            .unwrap(),
    }
}

pub fn policy_text(k: &Keys) -> String {
    format!(
        "# test policy\nlog {}\nwitness clock {}\nquorum clock\n",
        k.log.vkey(),
        k.clock.vkey()
    )
}

pub fn policy(k: &Keys) -> TrustPolicy {
    TrustPolicy::parse(&policy_text(k)).unwrap()
}

pub fn pinned(k: &Keys) -> Options {
    Options {
        trust: Trust::Pinned(policy(k)),
        previous: None,
    }
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn record(i: usize, system: &str, locator: &str, content: &str) -> Value {
    json!({
        "v": 1, "agent": "agent-a", "source": {"id": "repo", "type": "git"},
        "locator": locator, "version": format!("v{i}"),
        "sha256": sha256_hex(content.as_bytes()), "size": content.len(),
        "observed_at": format!("2026-11-20T10:{:02}:00.000Z", i % 60),
        "system": system, "kind": "model_card", "metadata": {}, "event": "observed",
    })
}

/// Contents of the test artifacts, by record number (blobs reuse them).
pub fn content(i: usize) -> String {
    format!("artifact content {i}\n")
}

/// Twelve records over two systems; locators repeat so `prev` chains have several links.
pub fn records() -> Vec<Value> {
    (0..12)
        .map(|i| {
            let system = if i % 3 == 0 { "fraud" } else { "credit" };
            let locator = format!("git+file:///repo#systems/{system}/file{}.md", i % 4);
            record(i, system, &locator, &content(i))
        })
        .collect()
}

/// JCS entries with correct `prev` links (previous leaf with the same source id and locator).
pub fn entries(records: &[Value]) -> Vec<Vec<u8>> {
    let mut last: BTreeMap<(String, String), u64> = BTreeMap::new();
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let key = (
                r["source"]["id"].as_str().unwrap().to_owned(),
                r["locator"].as_str().unwrap().to_owned(),
            );
            let prev = last.insert(key, i as u64);
            serde_json_canonicalizer::to_vec(&json!({
                "v": 1, "type": "evidence", "record": r, "agent": "agent-a",
                "received_at": "2026-11-20T11:00:00.000Z", "prev": prev,
            }))
            .unwrap()
        })
        .collect()
}

pub fn record_id(entry: &[u8]) -> String {
    let v: Value = serde_json::from_slice(entry).unwrap();
    sha256_hex(&serde_json_canonicalizer::to_vec(&v["record"]).unwrap())
}

#[derive(Clone, Debug, Default)]
pub struct BuildOpts {
    pub system: Option<String>,
    pub since: Option<u64>,
    pub no_cosign: bool,
    pub blobs: bool,
}

/// A signed, cosigned checkpoint note over `entries`.
pub fn checkpoint_note(k: &Keys, entries: &[Vec<u8>], time: u64, cosign: bool) -> String {
    let leaves: Vec<_> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    let cp = Checkpoint {
        origin: ORIGIN.into(),
        size: leaves.len() as u64,
        root: merkle::root_from_leaves(&leaves),
    };
    let mut sc = SignedCheckpoint::sign(cp, &k.log).unwrap();
    if cosign {
        sc.cosign(&k.clock, time).unwrap();
    }
    sc.note
}

/// The real catalog (the verifier recomputes the assessment with it).
fn catalog_files() -> Vec<(String, Vec<u8>)> {
    aims_catalog::Catalog::embedded()
        .unwrap()
        .data_files()
        .into_iter()
        .map(|(n, text)| (format!("catalog/{n}"), text.as_bytes().to_vec()))
        .collect()
}

/// The OSCAL findings of the assessment of `entries` as of the checkpoint time, as the exporter
/// writes them (one per applicable (system, control), with status and finding ids).
fn findings(entries: &[(u64, &Vec<u8>)], system: Option<&str>) -> Vec<Value> {
    // Tests that corrupt entries on purpose get no findings (the ledger check fails first).
    let parsed: Vec<(u64, aims_ledger::LedgerEntry)> = entries
        .iter()
        .filter_map(|(i, e)| Some((*i, aims_ledger::LedgerEntry::parse(e).ok()?)))
        .collect();
    let Ok(replay) = aims_catalog::Replay::new(
        parsed.iter().map(|(i, e)| (*i, e)),
        &std::collections::HashMap::new(),
    ) else {
        return Vec::new();
    };
    let catalog = aims_catalog::Catalog::embedded().unwrap();
    let now = aims_model::Timestamp::from_unix_secs(TIME as i64).unwrap();
    let mut out = Vec::new();
    for a in replay.assess(&catalog, system, now) {
        for v in &a.controls {
            if v.status == aims_model::ControlStatus::NotApplicable {
                continue;
            }
            let mut props = vec![
                json!({"name": "system", "value": a.system, "ns": "urn:aims-evidence:oscal"}),
                json!({"name": "control", "value": v.control, "ns": "urn:aims-evidence:oscal"}),
                json!({"name": "status", "value": v.status.as_str(), "ns": "urn:aims-evidence:oscal"}),
            ];
            for f in &v.findings {
                props.push(
                    json!({"name": "finding-id", "value": f.id, "ns": "urn:aims-evidence:oscal"}),
                );
            }
            out.push(
                json!({"uuid": format!("finding-{}-{}", a.system, v.control), "props": props}),
            );
        }
    }
    out
}

pub fn catalog_hash(files: &[(String, Vec<u8>)]) -> String {
    let mut buf = Vec::new();
    for (path, data) in files {
        buf.extend_from_slice(path.rsplit('/').next().unwrap().as_bytes());
        buf.push(b'\n');
        buf.extend_from_slice(data.len().to_string().as_bytes());
        buf.push(b'\n');
        buf.extend_from_slice(data);
    }
    sha256_hex(&buf)
}

fn oscal(entries: &[(u64, &Vec<u8>)], system: Option<&str>) -> Value {
    let mut observations = Vec::new();
    let mut resources = Vec::new();
    for (i, e) in entries {
        let v: Value = serde_json::from_slice(e).unwrap();
        let rid = record_id(e);
        let sha = v["record"]["sha256"].as_str().unwrap().to_owned();
        let res = format!("00000000-0000-4000-8000-{:012}", i);
        observations.push(json!({
            "uuid": format!("00000000-0000-4000-9000-{:012}", i),
            "methods": ["TEST"],
            "relevant-evidence": [{
                "href": format!("#{res}"),
                "description": "record",
                "props": [
                    {"name": "record-id", "value": rid, "ns": "urn:aims-evidence:oscal"},
                    {"name": "ledger-index", "value": i.to_string(), "ns": "urn:aims-evidence:oscal"},
                    {"name": "sha256", "value": sha, "ns": "urn:aims-evidence:oscal"},
                ],
            }],
            "collected": "2026-11-20T10:00:00Z",
        }));
        resources.push(json!({
            "uuid": res,
            "rlinks": [{"href": "git+file:///repo", "hashes": [{"algorithm": "SHA-256", "value": sha}]}],
        }));
    }
    json!({"assessment-results": {
        "uuid": "00000000-0000-4000-8000-000000000000",
        "results": [{"uuid": "00000000-0000-4000-a000-000000000000", "observations": observations,
            "findings": findings(entries, system)}],
        "back-matter": {"resources": resources},
    }})
}

/// The complete bundle for `entries` signed by `k`, laid out as the exporter does.
pub fn build(k: &Keys, entries: &[Vec<u8>], opts: &BuildOpts) -> BTreeMap<String, Vec<u8>> {
    let size = entries.len() as u64;
    let time = TIME;
    let note = checkpoint_note(k, entries, time, !opts.no_cosign);
    let (text, sigs) = note::split_note(&note).unwrap();
    let text = text.to_owned();
    let mut tree = MemoryHashStore::new();
    let leaves: Vec<_> = entries.iter().map(|e| merkle::leaf_hash(e)).collect();
    tree.append_all(&leaves).unwrap();

    let parsed: Vec<Value> = entries
        .iter()
        .map(|e| serde_json::from_slice(e).unwrap())
        .collect();
    let selected: Vec<usize> = match &opts.system {
        None => (0..entries.len()).collect(),
        Some(s) => {
            let mut set = BTreeSet::new();
            let mut stack: Vec<usize> = (0..entries.len())
                .filter(|i| parsed[*i]["record"]["system"] == s.as_str())
                .collect();
            while let Some(i) = stack.pop() {
                if set.insert(i)
                    && let Some(p) = parsed[i]["prev"].as_u64()
                {
                    stack.push(p as usize);
                }
            }
            set.into_iter().collect()
        }
    };

    let mut files = BTreeMap::new();
    files.insert("trust/policy.txt".to_owned(), policy_text(k).into_bytes());
    files.insert(
        "trust/log.pub.pem".to_owned(),
        k.log.public_key_pem().into_bytes(),
    );
    files.insert(
        "trust/clock.pub.pem".to_owned(),
        k.clock.public_key_pem().into_bytes(),
    );
    files.insert("checkpoint".to_owned(), note.clone().into_bytes());
    files.insert("checkpoint.body".to_owned(), text.clone().into_bytes());
    files.insert("checkpoint.sig".to_owned(), sigs[0].signature.clone());
    if !opts.no_cosign {
        files.insert(
            "checkpoint.cosig.msg".to_owned(),
            note::cosignature_message(&text, time).into_bytes(),
        );
        files.insert(
            "checkpoint.cosig.sig".to_owned(),
            sigs[1].signature[8..].to_vec(),
        );
    }
    let mut lines = Vec::new();
    let mut index = String::new();
    for &i in &selected {
        lines.extend_from_slice(&entries[i]);
        lines.push(b'\n');
        index.push_str(&format!("{i}\n"));
        let proof = TlogProof {
            extra: None,
            index: i as u64,
            hashes: merkle::inclusion_proof(i as u64, size, &tree).unwrap(),
            checkpoint_note: note.clone(),
        };
        files.insert(
            format!("proofs/{}.tlog-proof", record_id(&entries[i])),
            proof.encode().into_bytes(),
        );
    }
    files.insert("log/entries.jsonl".to_owned(), lines);
    if opts.system.is_some() {
        files.insert("log/index.txt".to_owned(), index.into_bytes());
    }
    if let Some(m) = opts.since {
        let p = merkle::consistency_proof(m, size, &tree).unwrap();
        let text: String = p.iter().map(|h| format!("{}\n", B64.encode(h))).collect();
        files.insert(format!("consistency/{m}-{size}.txt"), text.into_bytes());
    }
    let mut blobs = 0;
    if opts.blobs {
        for &i in &selected {
            let c = content(i);
            files.insert(
                format!("blobs/sha256/{}", sha256_hex(c.as_bytes())),
                c.into_bytes(),
            );
            blobs += 1;
        }
    }
    let scoped: Vec<(u64, &Vec<u8>)> = selected.iter().map(|&i| (i as u64, &entries[i])).collect();
    files.insert(
        "oscal/assessment-results.json".to_owned(),
        serde_json::to_vec_pretty(&oscal(&scoped, opts.system.as_deref())).unwrap(),
    );
    let cat = catalog_files();
    for (p, d) in &cat {
        files.insert(p.clone(), d.clone());
    }
    files.insert("README.md".to_owned(), b"# test bundle\n".to_vec());

    let manifest = json!({
        "format": "aims-evidence-bundle/1",
        "generator": "aims-verify tests",
        "origin": ORIGIN,
        "tree_size": size,
        "root": B64.encode(tree.root().unwrap()),
        "checkpoint_time": aims_model::Timestamp::from_unix_secs(time as i64).unwrap().to_string(),
        "checkpoint_unix": time,
        "catalog": {
            "version": "1", "framework": "iso42001-2023",
            "sha256": catalog_hash(&cat),
            "files": cat.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        },
        "scope": if opts.system.is_some() { "partial" } else { "full" },
        "system": opts.system,
        "since": opts.since,
        "counts": {
            "entries": selected.len(), "proofs": selected.len(), "blobs": blobs,
            "observations": selected.len(),
        },
        "files": files.keys().collect::<Vec<_>>(),
    });
    files.insert(
        "MANIFEST.json".to_owned(),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    );
    reseal(&mut files);
    files
}

/// Rewrites SHA256SUMS over every other file (what a careful forger would do).
pub fn reseal(files: &mut BTreeMap<String, Vec<u8>>) {
    files.remove("SHA256SUMS");
    let sums: String = files
        .iter()
        .map(|(p, d)| format!("{}  {p}\n", sha256_hex(d)))
        .collect();
    files.insert("SHA256SUMS".to_owned(), sums.into_bytes());
}

/// Rewrites the manifest's JSON through `f`, then reseals.
pub fn edit_manifest(files: &mut BTreeMap<String, Vec<u8>>, f: impl FnOnce(&mut Value)) {
    let mut m: Value = serde_json::from_slice(&files["MANIFEST.json"]).unwrap();
    f(&mut m);
    files.insert(
        "MANIFEST.json".to_owned(),
        serde_json::to_vec_pretty(&m).unwrap(),
    );
    reseal(files);
}

/// Updates the manifest's file list to the files present (after adding or removing files).
pub fn relist(files: &mut BTreeMap<String, Vec<u8>>) {
    let list: Vec<String> = files
        .keys()
        .filter(|p| *p != "MANIFEST.json" && *p != "SHA256SUMS")
        .cloned()
        .collect();
    edit_manifest(files, |m| m["files"] = json!(list));
}

pub fn run(files: &BTreeMap<String, Vec<u8>>, opts: &Options) -> Report {
    aims_verify::verify(&Bundle::from_files(files.clone()), opts)
}

/// Asserts the report failed at `check` with a detail containing every one of `needles`.
pub fn assert_fails(report: &Report, check: &str, needles: &[&str]) {
    let f = report
        .failure()
        .unwrap_or_else(|| panic!("expected a failure at {check}, got:\n{report}"));
    assert_eq!(f.name, check, "wrong failing check:\n{report}");
    for n in needles {
        assert!(
            f.detail.contains(n),
            "failure detail {:?} lacks {n:?}\n{report}",
            f.detail
        );
    }
    assert!(!report.verified);
}

pub fn assert_verified(report: &Report) {
    assert!(report.verified, "expected verified:\n{report}");
    assert!(report.checks.iter().all(|c| c.status != Status::Fail));
}

pub fn lines(files: &BTreeMap<String, Vec<u8>>) -> Vec<Vec<u8>> {
    let raw = &files["log/entries.jsonl"];
    raw[..raw.len() - 1]
        .split(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

pub fn set_lines(files: &mut BTreeMap<String, Vec<u8>>, lines: &[Vec<u8>]) {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    files.insert("log/entries.jsonl".to_owned(), out);
}

/// A gzip-compressed tar of `files` (for the binary tests).
pub fn tar_gz(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    for (p, d) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(TIME);
        t.append_data(&mut h, p, d.as_slice()).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap()
}
