//! The verifier's bundle reader: everything `aims-verify` reads from outside, through its own
//! functions (`Bundle::read_tar_gz`, `verify`, `TrustPolicy::parse`, the report's renderings).
//!
//! The first byte picks what the rest of the input is:
//! - 0: a whole `bundle.tar.gz`, verified with the keys it carries (`--trust-bundled-keys`);
//! - 1: one file of a real bundle (the next byte picks which, or a new path), replaced by the
//!   input, with SHA256SUMS resealed as a forger would, so the parsers behind the manifest check
//!   (checkpoint and notes, entries, receipts, consistency proofs, OSCAL, catalog) get the bytes;
//! - 2: the `--previous` checkpoint given with a real bundle;
//! - 3: the `--trust` policy file given with a real bundle.
//!
//! Never panics, and a bundle whose signed bytes (the detached checkpoint copies, the ledger
//! entries) were changed is never reported verified.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use aims_ledger::policy::TrustPolicy;
use aims_verify::{Bundle, Options, Report, Trust, verify};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

/// Real bundles (the seed corpus): a full and a partial export of a 12-leaf log.
const BASES: [&[u8]; 2] = [
    include_bytes!("../fixtures/bundle-full.tar.gz"),
    include_bytes!("../fixtures/bundle-partial.tar.gz"),
];

fn bases() -> &'static [BTreeMap<String, Vec<u8>>; 2] {
    static FILES: OnceLock<[BTreeMap<String, Vec<u8>>; 2]> = OnceLock::new();
    FILES.get_or_init(|| {
        BASES.map(|b| {
            Bundle::read_tar_gz(b)
                .expect("the seed bundle reads") // allow: a fuzz harness reports a broken invariant by panicking
                .files()
                .clone()
        })
    })
}

/// Extra paths a forger could add (each is read by some check).
const NEW_PATHS: &[&str] = &[
    "log/index.txt",
    "consistency/5-12.txt",
    "checkpoint.tsr",
    "blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000",
    "proofs/extra.tlog-proof",
];

/// Files whose every byte is authenticated by the checkpoint signatures.
const EXACT: &[&str] = &[
    "checkpoint.body",
    "checkpoint.sig",
    "checkpoint.cosig.msg",
    "checkpoint.cosig.sig",
    "log/entries.jsonl",
];

/// Rewrites SHA256SUMS over every other file.
fn reseal(files: &mut BTreeMap<String, Vec<u8>>) {
    files.remove("SHA256SUMS");
    let sums: String = files
        .iter()
        .map(|(p, d)| format!("{}  {p}\n", hex::encode(Sha256::digest(d))))
        .collect();
    files.insert("SHA256SUMS".to_owned(), sums.into_bytes());
}

/// What `aims-verify` prints: the text report and the `--json` report.
fn render(report: &Report) {
    let _ = report.to_string();
    serde_json::to_string_pretty(report).expect("the report encodes as JSON"); // allow: a fuzz harness reports a broken invariant by panicking
}

fn bundled() -> Options {
    Options {
        trust: Trust::Bundled,
        previous: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => {
            if let Ok(bundle) = Bundle::read_tar_gz(rest) {
                render(&verify(&bundle, &bundled()));
            }
        }
        1 => {
            let Some((&which, content)) = rest.split_first() else {
                return;
            };
            let base = &bases()[usize::from(which >> 7)];
            let mut files = base.clone();
            let slot = usize::from(which & 0x7f) % (files.len() + NEW_PATHS.len());
            let path = match files.keys().nth(slot) {
                Some(p) => p.clone(),
                None => NEW_PATHS[slot - files.len()].to_owned(),
            };
            let unchanged = files.get(&path).is_some_and(|d| d.as_slice() == content);
            files.insert(path.clone(), content.to_vec());
            if path != "SHA256SUMS" {
                reseal(&mut files);
            }
            let report = verify(&Bundle::from_files(files), &bundled());
            render(&report);
            // Files whose exact bytes are signed (the detached signature copies) or hashed into
            // the signed root (the entries) cannot change and still verify.
            if report.verified && !unchanged {
                assert!(
                    !EXACT.contains(&path.as_str()),
                    "a bundle with a forged {path} verified"
                );
            }
        }
        2 => {
            let Ok(previous) = std::str::from_utf8(rest) else {
                return;
            };
            let bundle = Bundle::from_files(bases()[0].clone());
            let opts = Options {
                trust: Trust::Bundled,
                previous: Some(previous.to_owned()),
            };
            render(&verify(&bundle, &opts));
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(policy) = TrustPolicy::parse(text)
                && !policy.logs.is_empty()
            {
                let bundle = Bundle::from_files(bases()[1].clone());
                let opts = Options {
                    trust: Trust::Pinned(policy),
                    previous: None,
                };
                render(&verify(&bundle, &opts));
            }
        }
    }
});
