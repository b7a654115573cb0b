//! aims-verify against bundles built here from aims-model primitives: every check passes on a good
//! bundle, and each kind of tampering fails at the right check, naming the file and index.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use aims_ledger::checkpoint::{Checkpoint, SignedCheckpoint};
use aims_ledger::merkle;
use aims_verify::{Options, Status, Trust};
use common::*;

fn good() -> (
    Keys,
    Vec<Vec<u8>>,
    std::collections::BTreeMap<String, Vec<u8>>,
) {
    let k = keys(1);
    let e = entries(&records());
    let files = build(&k, &e, &BuildOpts::default());
    (k, e, files)
}

#[test]
fn full_bundle_verifies() {
    let (k, e, files) = good();
    let r = run(&files, &pinned(&k));
    assert_verified(&r);
    assert_eq!(r.tree_size, Some(e.len() as u64));
    assert_eq!(r.origin.as_deref(), Some(ORIGIN));
    assert_eq!(r.cosigned_at.as_deref(), Some("2027-01-15T08:00:00.000Z"));
    assert_eq!(r.scope.as_deref(), Some("full"));
    let names: Vec<_> = r.checks.iter().map(|c| (c.name, c.status)).collect();
    assert_eq!(
        names,
        vec![
            ("manifest", Status::Pass),
            ("signatures", Status::Pass),
            ("timestamp", Status::Skipped),
            ("ledger", Status::Pass),
            ("proofs", Status::Pass),
            ("blobs", Status::Skipped),
            ("oscal", Status::Pass),
            ("assessment", Status::Pass),
        ]
    );
    assert!(r.warnings.is_empty());
    let text = r.to_string();
    assert!(text.contains("PASS signatures:"), "{text}");
    assert!(
        text.contains("trust/policy.txt matches the pinned policy"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "VERIFIED aims.test/ledger size 12, existed no later than 2027-01-15T08:00:00.000Z\n"
        ),
        "{text}"
    );
}

/// A bundle written before the maturity levels became catalog data carries four catalog files;
/// it still verifies (the built-in levels stand in; maturity is not compared).
#[test]
fn bundle_without_the_maturity_file_verifies() {
    let (k, _, mut files) = good();
    assert!(files.remove("catalog/maturity.yaml").is_some());
    let cat: Vec<(String, Vec<u8>)> = files
        .iter()
        .filter(|(p, _)| p.starts_with("catalog/"))
        .map(|(p, d)| (p.clone(), d.clone()))
        .collect();
    assert_eq!(cat.len(), 4);
    // The manifest lists the catalog files in DATA_FILES order, as the server writes them.
    let order = |p: &str| {
        aims_catalog::DATA_FILES
            .iter()
            .position(|n| p.ends_with(n))
            .unwrap()
    };
    let mut cat = cat;
    cat.sort_by_key(|(p, _)| order(p));
    let sha = catalog_hash(&cat);
    relist(&mut files);
    edit_manifest(&mut files, |m| {
        m["catalog"]["files"] = json!(cat.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>());
        m["catalog"]["sha256"] = json!(sha);
    });
    assert_verified(&run(&files, &pinned(&k)));
}

#[test]
fn partial_bundle_verifies_and_follows_prev_chains() {
    let k = keys(1);
    // A record of `fraud` whose locator earlier belonged to a `credit` record: the chain must
    // pull that earlier version in.
    let mut recs = records();
    recs[11]["system"] = json!("fraud");
    let e = entries(&recs);
    let files = build(
        &k,
        &e,
        &BuildOpts {
            system: Some("fraud".into()),
            ..BuildOpts::default()
        },
    );
    let index = String::from_utf8(files["log/index.txt"].clone()).unwrap();
    assert_eq!(index, "0\n3\n6\n7\n9\n11\n");
    let r = run(&files, &pinned(&k));
    assert_verified(&r);
    assert_eq!(r.scope.as_deref(), Some("partial"));
    assert!(r.checks[3].detail.contains("6 of 12 entries"), "{r}");

    // Dropping the earlier version breaks the chain.
    let mut cut = files.clone();
    let keep: Vec<usize> = vec![0, 1, 2, 4, 5];
    let ls = lines(&cut);
    set_lines(
        &mut cut,
        &keep.iter().map(|i| ls[*i].clone()).collect::<Vec<_>>(),
    );
    cut.insert("log/index.txt".into(), b"0\n3\n6\n9\n11\n".to_vec());
    cut.retain(|p, _| !p.starts_with("proofs/") || !p.contains(&record_id(&e[7])));
    relist(&mut cut);
    edit_manifest(&mut cut, |m| {
        m["counts"]["entries"] = json!(5);
        m["counts"]["proofs"] = json!(5);
    });
    let r = run(&cut, &pinned(&k));
    assert_fails(
        &r,
        "ledger",
        &[
            "log/entries.jsonl line 5 (leaf 11)",
            "prev leaf 7",
            "not in the bundle",
        ],
    );

    // A partial export's line that is not the leaf its index names fails its receipt.
    let mut wrong = files.clone();
    wrong.insert("log/index.txt".into(), b"0\n3\n6\n7\n9\n10\n".to_vec());
    reseal(&mut wrong);
    let r = run(&wrong, &pinned(&k));
    assert!(!r.verified, "{r}");
}

#[test]
fn bundled_keys_only_with_the_flag_and_loudly() {
    let (k, _, files) = good();
    let bundled = Options {
        trust: Trust::Bundled,
        previous: None,
    };
    let r = run(&files, &bundled);
    assert_verified(&r);
    assert!(r.warnings[0].contains("INSIDE the bundle"), "{r}");
    assert!(r.to_string().starts_with("WARNING: "));
    assert!(r.checks[1].detail.contains("BUNDLED"), "{r}");

    // A forger who re-signs with their own keys and ships them: the pinned policy refuses it,
    // only --trust-bundled-keys accepts it.
    let forger = keys(9);
    let forged = build(&forger, &entries(&records()), &BuildOpts::default());
    assert_verified(&run(&forged, &bundled));
    let r = run(&forged, &pinned(&k));
    assert_fails(
        &r,
        "signatures",
        &["checkpoint:", "not signed by the pinned log key"],
    );

    let mut no_policy = files.clone();
    no_policy.remove("trust/policy.txt");
    relist(&mut no_policy);
    assert_fails(
        &run(&no_policy, &bundled),
        "signatures",
        &["trust/policy.txt: missing"],
    );
}

#[test]
fn manifest_and_file_hashes() {
    let (k, _, files) = good();
    let opts = pinned(&k);

    let mut f = files.clone();
    f.remove("MANIFEST.json");
    assert_fails(&run(&f, &opts), "manifest", &["MANIFEST.json: missing"]);

    let mut f = files.clone();
    f.insert("MANIFEST.json".into(), b"{\"format\": 1}".to_vec());
    reseal(&mut f);
    assert_fails(
        &run(&f, &opts),
        "manifest",
        &["MANIFEST.json: not a valid manifest"],
    );

    let mut f = files.clone();
    edit_manifest(&mut f, |m| m["format"] = json!("aims-evidence-bundle/2"));
    assert_fails(&run(&f, &opts), "manifest", &["format"]);

    // A changed file without a new SHA256SUMS.
    let mut f = files.clone();
    f.get_mut("log/entries.jsonl").unwrap()[40] ^= 1;
    assert_fails(
        &run(&f, &opts),
        "manifest",
        &["log/entries.jsonl: SHA-256 does not match SHA256SUMS"],
    );

    // An extra file not listed.
    let mut f = files.clone();
    f.insert("extra.txt".into(), b"x".to_vec());
    assert_fails(
        &run(&f, &opts),
        "manifest",
        &["extra.txt: in the bundle but not listed"],
    );

    // Listed and hashed, but not in the manifest's file list.
    reseal(&mut f);
    assert_fails(
        &run(&f, &opts),
        "manifest",
        &["extra.txt: in the bundle but not in MANIFEST.json"],
    );

    // A file removed (and SHA256SUMS regenerated): the manifest still lists it.
    let mut f = files.clone();
    f.remove("README.md");
    reseal(&mut f);
    assert_fails(
        &run(&f, &opts),
        "manifest",
        &["README.md: in MANIFEST.json files but missing"],
    );

    // A listed file missing from the archive.
    let mut f = files.clone();
    f.remove("checkpoint.sig");
    assert_fails(
        &run(&f, &opts),
        "manifest",
        &["checkpoint.sig: listed in SHA256SUMS but missing"],
    );

    let mut f = files.clone();
    f.insert("SHA256SUMS".into(), b"abc  README.md\n".to_vec());
    assert_fails(&run(&f, &opts), "manifest", &["SHA256SUMS line 1"]);

    // Later checks are reported as skipped after a failure.
    let r = run(&f, &opts);
    assert!(r.checks[1..].iter().all(|c| c.status == Status::Skipped));
    assert_eq!(r.checks.len(), 8);
}

#[test]
fn signatures_and_cosignatures() {
    let (k, e, files) = good();
    let opts = pinned(&k);

    // Another server's keys pinned.
    let other = pinned(&keys(2));
    assert_fails(
        &run(&files, &other),
        "signatures",
        &[
            "checkpoint:",
            "not signed by the pinned log key aims.test/ledger+",
        ],
    );

    // One changed byte of the log signature.
    let mut f = files.clone();
    let note = String::from_utf8(f["checkpoint"].clone()).unwrap();
    let (text, sigs) = aims_ledger::note::split_note(&note).unwrap();
    let mut raw = sigs[0].key_id.to_be_bytes().to_vec();
    raw.extend_from_slice(&sigs[0].signature);
    raw[10] ^= 0x01;
    let bad_line = format!("\u{2014} {} {}\n", sigs[0].name, B64.encode(&raw));
    let good_line = note[text.len() + 1..].lines().next().unwrap().to_owned() + "\n";
    let tampered = note.replacen(&good_line, &bad_line, 1);
    assert_ne!(tampered, note);
    f.insert("checkpoint".into(), tampered.into_bytes());
    reseal(&mut f);
    assert_fails(
        &run(&f, &opts),
        "signatures",
        &["checkpoint: signature by aims.test/ledger does not verify"],
    );

    // A different origin than the pinned log.
    let mut f = files.clone();
    let other_origin = note.replacen(ORIGIN, "evil.test/ledger", 1);
    f.insert("checkpoint".into(), other_origin.into_bytes());
    reseal(&mut f);
    assert_fails(
        &run(&f, &opts),
        "signatures",
        &["origin \"evil.test/ledger\""],
    );

    // Detached copies must be the signed bytes.
    let mut f = files.clone();
    f.get_mut("checkpoint.sig").unwrap()[0] ^= 1;
    reseal(&mut f);
    assert_fails(&run(&f, &opts), "signatures", &["checkpoint.sig:"]);
    let mut f = files.clone();
    f.insert(
        "checkpoint.body".into(),
        b"aims.test/ledger\n1\nAAAA\n".to_vec(),
    );
    reseal(&mut f);
    assert_fails(&run(&f, &opts), "signatures", &["checkpoint.body: differs"]);
    let mut f = files.clone();
    let msg = String::from_utf8(f["checkpoint.cosig.msg"].clone()).unwrap();
    f.insert(
        "checkpoint.cosig.msg".into(),
        msg.replace("time 1800000000", "time 1700000000")
            .into_bytes(),
    );
    reseal(&mut f);
    assert_fails(&run(&f, &opts), "signatures", &["checkpoint.cosig.msg:"]);
    let mut f = files.clone();
    f.get_mut("checkpoint.cosig.sig").unwrap()[5] ^= 1;
    reseal(&mut f);
    assert_fails(&run(&f, &opts), "signatures", &["checkpoint.cosig.sig:"]);

    // No cosignature: the quorum `clock` is not met.
    let f = build(
        &k,
        &e,
        &BuildOpts {
            no_cosign: true,
            ..BuildOpts::default()
        },
    );
    assert_fails(
        &run(&f, &opts),
        "signatures",
        &["checkpoint:", "quorum", "none"],
    );

    // The manifest must describe the signed checkpoint.
    let mut f = files.clone();
    edit_manifest(&mut f, |m| m["tree_size"] = json!(11));
    assert_fails(
        &run(&f, &opts),
        "signatures",
        &["MANIFEST.json: tree_size differs"],
    );
    let mut f = files.clone();
    edit_manifest(&mut f, |m| m["checkpoint_unix"] = json!(1_700_000_000u64));
    assert_fails(&run(&f, &opts), "signatures", &["checkpoint_time differs"]);
}

#[test]
fn ledger_tampering_names_the_line_and_leaf() {
    let (k, e, files) = good();
    let opts = pinned(&k);

    // One byte changed inside a record (SHA256SUMS regenerated).
    let mut f = files.clone();
    let mut ls = lines(&f);
    let pos = ls[7].windows(6).position(|w| w == b"file3.").unwrap();
    ls[7][pos + 4] = b'9';
    set_lines(&mut f, &ls);
    reseal(&mut f);
    let r = run(&f, &opts);
    assert_fails(
        &r,
        "ledger",
        &["log/entries.jsonl line 8 (leaf 7): leaf hash not in tree — root mismatch"],
    );
    assert!(
        r.to_string()
            .contains("FAIL ledger: log/entries.jsonl line 8 (leaf 7)")
    );

    // An entry removed.
    let mut f = files.clone();
    let mut ls = lines(&f);
    ls.remove(4);
    set_lines(&mut f, &ls);
    reseal(&mut f);
    assert_fails(
        &run(&f, &opts),
        "ledger",
        &["line 5 (leaf 4)", "11 entries but the checkpoint has 12"],
    );

    // The last entry removed: every remaining line verifies, the end is missing.
    let mut f = files.clone();
    let mut ls = lines(&f);
    ls.pop();
    set_lines(&mut f, &ls);
    reseal(&mut f);
    assert_fails(
        &run(&f, &opts),
        "ledger",
        &["line 12 (leaf 11)", "missing from the end"],
    );

    // Two entries swapped.
    let mut f = files.clone();
    let mut ls = lines(&f);
    ls.swap(2, 5);
    set_lines(&mut f, &ls);
    reseal(&mut f);
    assert_fails(
        &run(&f, &opts),
        "ledger",
        &["line 3 (leaf 2): leaf hash not in tree"],
    );

    // An entry appended.
    let mut f = files.clone();
    let mut ls = lines(&f);
    ls.push(ls[0].clone());
    set_lines(&mut f, &ls);
    reseal(&mut f);
    assert_fails(
        &run(&f, &opts),
        "ledger",
        &["13 entries but the checkpoint has 12"],
    );

    // Truncated file (no final newline).
    let mut f = files.clone();
    f.get_mut("log/entries.jsonl").unwrap().pop();
    reseal(&mut f);
    assert_fails(&run(&f, &opts), "ledger", &["does not end in a newline"]);

    // Missing entries file.
    let mut f = files.clone();
    f.remove("log/entries.jsonl");
    relist(&mut f);
    assert_fails(&run(&f, &opts), "ledger", &["log/entries.jsonl: missing"]);
    let _ = e;
}

/// A log that signs bad content itself (a buggy or malicious server): the root matches, the
/// entry-level checks must catch it.
#[test]
fn signed_but_malformed_entries() {
    let k = keys(1);
    let recs = records();

    // A wrong prev link.
    let mut e = entries(&recs);
    let mut v: Value = serde_json::from_slice(&e[8]).unwrap();
    assert_eq!(v["prev"], json!(4));
    v["prev"] = json!(0);
    e[8] = serde_json_canonicalizer::to_vec(&v).unwrap();
    let f = build(&k, &e, &BuildOpts::default());
    assert_fails(
        &run(&f, &pinned(&k)),
        "ledger",
        &["line 9 (leaf 8)", "prev is leaf 0", "is leaf 4"],
    );

    // A prev link dropped (an earlier version hidden).
    let mut e = entries(&recs);
    let mut v: Value = serde_json::from_slice(&e[8]).unwrap();
    v["prev"] = Value::Null;
    e[8] = serde_json_canonicalizer::to_vec(&v).unwrap();
    let f = build(&k, &e, &BuildOpts::default());
    assert_fails(&run(&f, &pinned(&k)), "ledger", &["prev is null"]);

    // Not canonical JSON.
    let mut e = entries(&recs);
    let v: Value = serde_json::from_slice(&e[3]).unwrap();
    e[3] = serde_json::to_vec_pretty(&v)
        .unwrap()
        .into_iter()
        .filter(|b| *b != b'\n')
        .collect();
    let f = build(&k, &e, &BuildOpts::default());
    assert_fails(
        &run(&f, &pinned(&k)),
        "ledger",
        &["line 4 (leaf 3)", "canonical"],
    );

    // Not an entry (unknown field in the record).
    let mut e = entries(&recs);
    let mut v: Value = serde_json::from_slice(&e[2]).unwrap();
    v["record"]["extra"] = json!(1);
    e[2] = serde_json_canonicalizer::to_vec(&v).unwrap();
    let f = build(&k, &e, &BuildOpts::default());
    assert_fails(
        &run(&f, &pinned(&k)),
        "ledger",
        &["line 3 (leaf 2)", "not an aims-evidence ledger entry"],
    );

    // The same record twice.
    let mut e = entries(&recs);
    e.push(e[1].clone());
    let f = build(&k, &e, &BuildOpts::default());
    let r = run(&f, &pinned(&k));
    assert!(!r.verified, "{r}");
    let fail = r.failure().unwrap();
    assert!(
        fail.detail.contains("line 13 (leaf 12)")
            && fail.detail.contains("already appears at leaf 1"),
        "{r}"
    );
}

#[test]
fn receipts() {
    let (k, e, files) = good();
    let opts = pinned(&k);
    let path = format!("proofs/{}.tlog-proof", record_id(&e[5]));

    // A flipped proof hash.
    let mut f = files.clone();
    let text = String::from_utf8(f[&path].clone()).unwrap();
    let line = text.lines().nth(2).unwrap().to_owned();
    let mut h = B64.decode(&line).unwrap();
    h[0] ^= 1;
    f.insert(
        path.clone(),
        text.replacen(&line, &B64.encode(&h), 1).into_bytes(),
    );
    reseal(&mut f);
    assert_fails(
        &run(&f, &opts),
        "proofs",
        &[&path, "leaf 5", "inclusion proof does not verify"],
    );

    // A full export needs no receipts (the recomputed root proves every entry): without any
    // it verifies; a partial one missing a receipt fails, naming the leaf.
    let mut f = files.clone();
    f.retain(|p, _| !p.starts_with("proofs/"));
    relist(&mut f);
    edit_manifest(&mut f, |m| m["counts"]["proofs"] = json!(0));
    let r = run(&f, &opts);
    assert_verified(&r);
    assert!(
        r.checks
            .iter()
            .any(|c| c.detail.contains("no receipts needed")),
        "{r}"
    );
    let credit = BuildOpts {
        system: Some("credit".into()),
        ..BuildOpts::default()
    };
    let mut f = build(&k, &e, &credit);
    let n = f.keys().filter(|p| p.starts_with("proofs/")).count();
    f.remove(&path);
    relist(&mut f);
    edit_manifest(&mut f, |m| m["counts"]["proofs"] = json!(n - 1));
    assert_fails(&run(&f, &opts), "proofs", &["proofs/ leaf 5", "no receipt"]);

    // A receipt under another record's name.
    let mut f = files.clone();
    let other = format!("proofs/{}.tlog-proof", record_id(&e[6]));
    let (a, b) = (f[&path].clone(), f[&other].clone());
    f.insert(path.clone(), b);
    f.insert(other, a);
    reseal(&mut f);
    assert_fails(&run(&f, &opts), "proofs", &["holds another record"]);

    // A receipt against another checkpoint (an older, smaller tree).
    let mut f = files.clone();
    let old_note = checkpoint_note(&k, &e[..8], TIME - 60, true);
    let mut p =
        aims_ledger::proof_file::TlogProof::parse(&String::from_utf8(f[&path].clone()).unwrap())
            .unwrap();
    p.checkpoint_note = old_note;
    f.insert(path.clone(), p.encode().into_bytes());
    reseal(&mut f);
    assert_fails(&run(&f, &opts), "proofs", &["another checkpoint"]);

    // Manifest count.
    let mut f = files.clone();
    edit_manifest(&mut f, |m| m["counts"]["proofs"] = json!(3));
    assert_fails(&run(&f, &opts), "proofs", &["counts.proofs"]);
}

#[test]
fn previous_checkpoint_and_consistency() {
    let k = keys(1);
    let e = entries(&records());
    let old = checkpoint_note(&k, &e[..5], TIME - 3600, true);

    // Full export: the old root is recomputed from the entries.
    let files = build(&k, &e, &BuildOpts::default());
    let opts = Options {
        trust: Trust::Pinned(policy(&k)),
        previous: Some(old.clone()),
    };
    let r = run(&files, &opts);
    assert_verified(&r);
    assert!(
        r.checks[4].detail.contains("first 5 entries reproduce"),
        "{r}"
    );

    // Partial export: needs consistency/5-12.txt.
    let partial = BuildOpts {
        system: Some("credit".into()),
        ..BuildOpts::default()
    };
    let f = build(&k, &e, &partial);
    assert_fails(&run(&f, &opts), "proofs", &["no consistency proof 5-12"]);
    let f = build(
        &k,
        &e,
        &BuildOpts {
            since: Some(5),
            ..partial.clone()
        },
    );
    let r = run(&f, &opts);
    assert_verified(&r);
    assert!(r.checks[4].detail.contains("consistency/5-12.txt"), "{r}");

    // A forked log: the previous checkpoint is of a different history.
    let mut forked = e[..5].to_vec();
    forked[2] = e[9].clone();
    let fork_note = checkpoint_note(&k, &forked, TIME - 3600, true);
    let fopts = Options {
        trust: Trust::Pinned(policy(&k)),
        previous: Some(fork_note),
    };
    assert_fails(
        &run(&f, &fopts),
        "proofs",
        &[
            "consistency/5-12.txt",
            "does not extend the previous checkpoint",
        ],
    );
    assert_fails(
        &run(&files, &fopts),
        "proofs",
        &["log/entries.jsonl", "the first 5 entries do not hash"],
    );

    // Same size, different root.
    let same = checkpoint_note(
        &k,
        &forked.iter().chain(&e[5..]).cloned().collect::<Vec<_>>(),
        TIME,
        true,
    );
    let sopts = Options {
        trust: Trust::Pinned(policy(&k)),
        previous: Some(same),
    };
    assert_fails(&run(&files, &sopts), "proofs", &["the log forked"]);

    // A previous checkpoint newer than the bundle (rollback or stale export).
    let mut more = e.clone();
    more.push(e[0].clone());
    let newer = checkpoint_note(&k, &more, TIME + 60, true);
    let nopts = Options {
        trust: Trust::Pinned(policy(&k)),
        previous: Some(newer),
    };
    assert_fails(
        &run(&files, &nopts),
        "proofs",
        &["--previous", "newer than the bundle"],
    );

    // A previous checkpoint signed by another key is refused.
    let foreign = checkpoint_note(&keys(3), &e[..5], TIME, true);
    let popts = Options {
        trust: Trust::Pinned(policy(&k)),
        previous: Some(foreign),
    };
    assert_fails(
        &run(&files, &popts),
        "proofs",
        &["--previous", "pinned log key"],
    );

    // A tampered consistency file in a full export is caught even without --previous.
    let mut f = build(
        &k,
        &e,
        &BuildOpts {
            since: Some(5),
            ..BuildOpts::default()
        },
    );
    f.insert(
        "consistency/5-12.txt".into(),
        format!("{}\n", B64.encode([7u8; 32])).into_bytes(),
    );
    reseal(&mut f);
    assert_fails(
        &run(&f, &pinned(&k)),
        "proofs",
        &["consistency/5-12.txt", "does not verify"],
    );

    // The empty-tree checkpoint is trivially extended.
    let empty = SignedCheckpoint::sign(
        Checkpoint {
            origin: ORIGIN.into(),
            size: 0,
            root: merkle::empty_root(),
        },
        &k.log,
    )
    .unwrap();
    let eopts = Options {
        trust: Trust::Pinned(policy(&k)),
        previous: Some(empty.note),
    };
    assert_verified(&run(&files, &eopts));
}

#[test]
fn blobs_are_checked_against_records() {
    let k = keys(1);
    let e = entries(&records());
    let opts = BuildOpts {
        blobs: true,
        ..BuildOpts::default()
    };
    let files = build(&k, &e, &opts);
    let r = run(&files, &pinned(&k));
    assert_verified(&r);
    assert_eq!(r.checks[5].status, Status::Pass, "{r}");

    let blob = format!("blobs/sha256/{}", sha256_hex(content(3).as_bytes()));
    let mut f = files.clone();
    f.get_mut(&blob).unwrap()[0] ^= 1;
    reseal(&mut f);
    assert_fails(
        &run(&f, &pinned(&k)),
        "blobs",
        &[&blob, "does not hash to its name"],
    );

    // A blob no record names.
    let mut f = files.clone();
    let stray = b"stray".to_vec();
    f.insert(format!("blobs/sha256/{}", sha256_hex(&stray)), stray);
    relist(&mut f);
    assert_fails(
        &run(&f, &pinned(&k)),
        "blobs",
        &["no exported record has this SHA-256"],
    );
}

#[test]
fn oscal_observations_must_match_the_ledger() {
    let (k, e, files) = good();
    let opts = pinned(&k);
    let edit = |f: &mut std::collections::BTreeMap<String, Vec<u8>>, g: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_slice(&f["oscal/assessment-results.json"]).unwrap();
        g(&mut v);
        f.insert(
            "oscal/assessment-results.json".into(),
            serde_json::to_vec(&v).unwrap(),
        );
        reseal(f);
    };
    let mut f = files.clone();
    edit(&mut f, &|v| {
        v["assessment-results"]["results"][0]["observations"][3]["relevant-evidence"][0]["props"]
            [0]["value"] = json!("0".repeat(64));
    });
    assert_fails(
        &run(&f, &opts),
        "oscal",
        &[
            "oscal/assessment-results.json results[0].observations[3]",
            "not in the bundle's entries",
        ],
    );
    let mut f = files.clone();
    edit(&mut f, &|v| {
        v["assessment-results"]["results"][0]["observations"][4]["relevant-evidence"][0]["props"]
            [2]["value"] = json!("1".repeat(64));
    });
    assert_fails(
        &run(&f, &opts),
        "oscal",
        &["sha256", "does not match record"],
    );
    let mut f = files.clone();
    edit(&mut f, &|v| {
        v["assessment-results"]["back-matter"]["resources"][2]["rlinks"][0]["hashes"][0]["value"] =
            json!("2".repeat(64));
    });
    assert_fails(
        &run(&f, &opts),
        "oscal",
        &["back-matter resource", "does not match"],
    );
    let mut f = files.clone();
    edit(&mut f, &|v| {
        v["assessment-results"]["results"][0]["observations"][1]["relevant-evidence"][0]["props"]
            [1]["value"] = json!("7");
    });
    assert_fails(&run(&f, &opts), "oscal", &["ledger-index \"7\""]);
    // The catalog files must hash to the manifest's catalog hash.
    let mut f = files.clone();
    f.insert("catalog/rules.yaml".into(), b"changed\n".to_vec());
    reseal(&mut f);
    assert_fails(&run(&f, &opts), "oscal", &["catalog.sha256"]);
    let _ = e;
}

// ---- the binary ----------------------------------------------------------------------------------

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aims-verify"))
}

#[test]
fn binary_exit_codes_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let (k, _, files) = good();
    let bundle = dir.path().join("bundle.tar.gz");
    std::fs::write(&bundle, tar_gz(&files)).unwrap();
    let trust = dir.path().join("policy.txt");
    std::fs::write(&trust, policy_text(&k)).unwrap();

    let out = bin()
        .arg(&bundle)
        .arg("--trust")
        .arg(&trust)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.lines().count(), 9, "{stdout}");
    assert!(stdout.contains("PASS ledger:"), "{stdout}");

    let out = bin()
        .arg(&bundle)
        .args(["--trust"])
        .arg(&trust)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], json!(true));
    assert_eq!(v["tree_size"], json!(12));
    assert_eq!(v["origin"], json!(ORIGIN));
    assert_eq!(v["cosigned_at"], json!("2027-01-15T08:00:00.000Z"));
    assert_eq!(v["checks"][0]["name"], json!("manifest"));
    assert_eq!(v["checks"][2]["status"], json!("skipped"));

    // --previous from a file.
    let prev = dir.path().join("prev-checkpoint");
    std::fs::write(&prev, &files["checkpoint"]).unwrap();
    let out = bin()
        .arg(&bundle)
        .arg("--trust")
        .arg(&trust)
        .arg("--previous")
        .arg(&prev)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A failure: exit 1 and the FAIL line names the file and leaf.
    let mut f = files.clone();
    let mut ls = lines(&f);
    ls.swap(0, 1);
    set_lines(&mut f, &ls);
    reseal(&mut f);
    let bad = dir.path().join("bad.tar.gz");
    std::fs::write(&bad, tar_gz(&f)).unwrap();
    let out = bin().arg(&bad).arg("--trust").arg(&trust).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL ledger: log/entries.jsonl line 1 (leaf 0): leaf hash not in tree"),
        "{stdout}"
    );
    assert!(stdout.contains("NOT VERIFIED"));
    let out = bin()
        .arg(&bad)
        .arg("--trust")
        .arg(&trust)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verified"], json!(false));
    assert_eq!(v["checks"][3]["status"], json!("fail"));

    // Bundled keys: exit 0 with a warning; --trust and --trust-bundled-keys together: usage.
    let out = bin()
        .arg(&bundle)
        .arg("--trust-bundled-keys")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("WARNING:"));
    let out = bin()
        .arg(&bundle)
        .arg("--trust")
        .arg(&trust)
        .arg("--trust-bundled-keys")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // Usage and IO errors: exit 2.
    let missing = dir.path().join("missing.tar.gz");
    let out = bin()
        .arg(&missing)
        .arg("--trust")
        .arg(&trust)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read bundle"));
    let out = bin()
        .arg(&bundle)
        .arg("--trust")
        .arg(dir.path().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read trust file"));
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "log not-a-key\n").unwrap();
    let out = bin()
        .arg(&bundle)
        .arg("--trust")
        .arg(&junk)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .arg(&junk)
        .arg("--trust")
        .arg(&trust)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tar.gz"));
    let out = bin().arg(&bundle).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "no --trust is a usage error");
    let out = bin().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn hostile_archives_are_io_errors() {
    // A symlink member and a path climbing out of the bundle.
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    t.append_link(&mut h, "link", "/etc/passwd").unwrap();
    let bytes = t.into_inner().unwrap().finish().unwrap();
    assert!(matches!(
        aims_verify::Bundle::read_tar_gz(&bytes),
        Err(aims_verify::BundleError::NotAFile(_))
    ));
    let mut raw = Vec::new();
    {
        let gz = flate2::write::GzEncoder::new(&mut raw, flate2::Compression::fast());
        let mut t = tar::Builder::new(gz);
        let mut h = tar::Header::new_old();
        let name = b"../escape";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        t.append(&h, &b"x"[..]).unwrap();
        t.into_inner().unwrap().finish().unwrap();
    }
    assert!(matches!(
        aims_verify::Bundle::read_tar_gz(&raw),
        Err(aims_verify::BundleError::BadPath(_))
    ));
    // Round trip of a good archive.
    let (_, _, files) = good();
    let b = aims_verify::Bundle::read_tar_gz(&tar_gz(&files)).unwrap();
    assert_eq!(b.files(), &files);
}

/// Issue 18 M6: findings falsified in the OSCAL (a status changed, a finding left out) and
/// resealed in SHA256SUMS are caught by recomputing the assessment from the entries and the
/// bundled catalog; the failure names the system and control.
#[test]
fn issue_18_m6_falsified_findings_fail_the_recomputed_assessment() {
    let (k, _, files) = good();
    let ar: Value = serde_json::from_slice(&files["oscal/assessment-results.json"]).unwrap();
    let findings = ar["assessment-results"]["results"][0]["findings"]
        .as_array()
        .unwrap()
        .clone();
    assert!(findings.len() > 1, "the test bundle has findings");
    let non_fresh = findings
        .iter()
        .position(|f| {
            f["props"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "status" && p["value"] != "fresh")
        })
        .expect("some control is not fresh");

    // Every status rewritten to fresh.
    let mut forged = ar.clone();
    for p in forged["assessment-results"]["results"][0]["findings"][non_fresh]["props"]
        .as_array_mut()
        .unwrap()
    {
        if p["name"] == "status" {
            p["value"] = json!("fresh");
        }
    }
    let mut f = files.clone();
    f.insert(
        "oscal/assessment-results.json".into(),
        serde_json::to_vec_pretty(&forged).unwrap(),
    );
    reseal(&mut f);
    assert_fails(
        &run(&f, &pinned(&k)),
        "assessment",
        &["control", "the findings say fresh", "recomputed"],
    );

    // A finding left out.
    let mut cut = ar.clone();
    cut["assessment-results"]["results"][0]["findings"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    let mut f = files.clone();
    f.insert(
        "oscal/assessment-results.json".into(),
        serde_json::to_vec_pretty(&cut).unwrap(),
    );
    reseal(&mut f);
    assert_fails(&run(&f, &pinned(&k)), "assessment", &["no finding, but"]);
}
