//! The work the checks need that depends on one file or one line alone, done up front on every
//! core before the checks run in order: the SHA-256 of every file (check 1) and what each line
//! of `log/entries.jsonl` shows on its own (check 4: leaf hash, parse, canonical form, record
//! id).
//!
//! Hashing the 60 MB entries file is one sequential SHA-256 stream (one core for its whole
//! length); checking lines splits into small tasks. Run as one task list, the other core checks
//! lines while one hashes the file, instead of waiting for check 1. When the bundle was read
//! from an archive, that hash and the leaf hashes were mostly made while it was decompressed
//! ([`Bundle::entries_hashes`]) and are not made again. Nothing here decides a verdict: the
//! checks read these results in their usual order and fail as before. When an early check
//! fails, the later results are simply unused.

use super::*;

/// Lines per task: large enough that handing out tasks costs nothing, small enough that the
/// cores finish together.
const LINES_PER_TASK: usize = 512;

/// What a line of `log/entries.jsonl` shows on its own.
pub(super) struct Line {
    pub(super) leaf: Hash,
    /// The entry, or why the line is not one (without its position).
    pub(super) entry: Result<Checked, String>,
}

/// A line that is an aims-evidence ledger entry.
pub(super) struct Checked {
    pub(super) record_id: ContentHash,
    /// Whether `record_id` is also the typed record's `record_id()` (see [`Parsed::replay_id`]).
    pub(super) typed_id: bool,
    pub(super) entry: Box<LedgerEntry>,
}

/// Results for the checks.
#[derive(Default)]
pub(super) struct Prepared<'a> {
    /// SHA-256 of every file of the bundle.
    pub(super) digests: HashMap<&'a str, [u8; 32]>,
    /// The lines of `log/entries.jsonl` and what each shows (`None` when the file is missing or
    /// does not end in a newline: the ledger check fails on that first).
    pub(super) lines: Option<(Vec<&'a [u8]>, Vec<Line>)>,
    /// The OSCAL assessment results parsed, or the parser's error (`None`: no such file).
    pub(super) oscal: Option<Result<Value, String>>,
}

/// The lines of the entries file (`None`: it does not end in a newline).
pub(super) fn split_lines(raw: &[u8]) -> Option<Vec<&[u8]>> {
    if raw.is_empty() {
        return Some(Vec::new());
    }
    let body = raw.strip_suffix(b"\n")?;
    Some(body.split(|b| *b == b'\n').collect())
}

/// A file to hash, lines to check (from this line number on) or the OSCAL document to parse
/// (`'l`: the list of lines; `'a`: the bundle's bytes).
enum Task<'l, 'a> {
    Hash(&'a str, &'a [u8]),
    Lines(usize, &'l [&'a [u8]]),
    Json(&'a [u8]),
}

enum Done {
    Hash([u8; 32]),
    Lines(Vec<Line>),
    Json(Result<Value, String>),
}

/// Below this many bytes in all, the work is done on the calling thread (starting threads
/// would cost more: tests, fuzzing, small exports).
const SMALL_BUNDLE: usize = 1 << 20;

pub(super) fn prepare(bundle: &Bundle) -> Prepared<'_> {
    let lines = bundle.get(layout::ENTRIES).and_then(split_lines);
    let early = bundle.entries_hashes();
    let mut digests = HashMap::with_capacity(bundle.files().len());
    if let Some(h) = early {
        digests.insert(layout::ENTRIES, h.file);
    }
    let leaves: &[Hash] = early.map_or(&[], |h| h.leaves.as_slice());
    // Largest files first: the entries file's hash is the longest single task.
    let mut files: Vec<(&str, &[u8])> = bundle
        .files()
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .filter(|(p, _)| !digests.contains_key(p))
        .collect();
    files.sort_by_key(|(_, d)| std::cmp::Reverse(d.len()));
    let mut tasks: Vec<Task<'_, '_>> = files.iter().map(|&(p, d)| Task::Hash(p, d)).collect();
    if let Some(oscal) = bundle.get(layout::OSCAL_AR) {
        tasks.insert(tasks.len().min(1), Task::Json(oscal));
    }
    if let Some(lines) = &lines {
        // After the largest file, before the rest: the small files fill the last gaps.
        let at = tasks.len().min(1);
        let chunks: Vec<Task<'_, '_>> = lines
            .chunks(LINES_PER_TASK)
            .enumerate()
            .map(|(i, c)| Task::Lines(i * LINES_PER_TASK, c))
            .collect();
        tasks.splice(at..at, chunks);
    }
    let total: usize = bundle.files().values().map(Vec::len).sum();
    let threads = if total < SMALL_BUNDLE {
        1
    } else {
        par::threads()
    };
    let done = par::map_on(threads, &tasks, 1, |t| match t {
        Task::Hash(_, data) => Done::Hash(Sha256::digest(data).into()),
        Task::Lines(first, lines) => {
            let mut buffers = jcs::Buffers::default();
            Done::Lines(
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| check_line(l, leaves.get(first + i).copied(), &mut buffers))
                    .collect(),
            )
        }
        Task::Json(data) => Done::Json(serde_json::from_slice(data).map_err(|e| e.to_string())),
    });
    let mut oscal = None;
    let mut checked = Vec::with_capacity(lines.as_ref().map_or(0, Vec::len));
    for (t, d) in tasks.iter().zip(done) {
        match (t, d) {
            (Task::Hash(path, _), Done::Hash(h)) => {
                digests.insert(*path, h);
            }
            (Task::Lines(..), Done::Lines(l)) => checked.extend(l),
            (Task::Json(_), Done::Json(v)) => oscal = Some(v),
            _ => {}
        }
    }
    drop(tasks);
    Prepared {
        digests,
        lines: lines.map(|l| (l, checked)),
        oscal,
    }
}

/// The lines' results computed on demand (when [`prepare`] did not run on these bytes).
pub(super) fn check_lines(lines: &[&[u8]]) -> Vec<Line> {
    par::map(lines, LINES_PER_TASK, |l| {
        check_line(l, None, &mut jcs::Buffers::default())
    })
}

/// One line's results; `leaf`: its leaf hash when already known.
pub(super) fn check_line(bytes: &[u8], leaf: Option<Hash>, buffers: &mut jcs::Buffers) -> Line {
    Line {
        leaf: leaf.unwrap_or_else(|| merkle::leaf_hash(bytes)),
        entry: fast_entry(bytes, buffers).map_or_else(|| slow_entry(bytes), Ok),
    }
}

/// The usual case, about five times cheaper than [`slow_entry`]: the line parses as a
/// [`LedgerEntry`] and is, byte for byte, the canonical encoding of that entry ([`jcs`]). Then
/// it is canonical JSON, its record's canonical JSON is the span of its `record` (or
/// `confirmation`) member, and that span is also the canonical encoding of the typed record:
/// every value [`slow_entry`] would compute, without a generic JSON tree. `None` sends the line
/// to [`slow_entry`], which decides (and words any failure) exactly as before.
pub(super) fn fast_entry(bytes: &[u8], buffers: &mut jcs::Buffers) -> Option<Checked> {
    // `LedgerEntry::parse`, from text checked as UTF-8 once (the parser then skips checking
    // each string of the entry).
    let text = std::str::from_utf8(bytes).ok()?;
    let entry: Box<LedgerEntry> = Box::new(serde_json::from_str(text).ok()?);
    entry.check().ok()?;
    let member = if entry.record.is_some() {
        "record"
    } else {
        "confirmation"
    };
    let (canonical, span) = buffers.encode(&*entry, member).ok()?;
    if canonical != bytes {
        return None;
    }
    Some(Checked {
        record_id: ContentHash::of(bytes.get(span?)?),
        typed_id: true,
        entry,
    })
}

/// Every entry parses as JSON, is canonical, has a record (or confirmation) and is an
/// aims-evidence ledger entry; its record id hashes the canonical JSON of that object.
pub(super) fn slow_entry(bytes: &[u8]) -> Result<Checked, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|err| format!("not JSON: {err}"))?;
    let canonical = serde_json_canonicalizer::to_vec(&value)
        .map_err(|err| format!("not canonical JSON: {err}"))?;
    if canonical != bytes {
        return Err("entry is not in RFC 8785 canonical form".to_owned());
    }
    let subject = value
        .get("record")
        .or_else(|| value.get("confirmation"))
        .ok_or_else(|| "entry has no record".to_owned())?;
    let record_id = serde_json_canonicalizer::to_vec(subject)
        .map(|b| ContentHash::of(&b))
        .map_err(|err| err.to_string())?;
    let entry = LedgerEntry::parse(bytes)
        .map_err(|err| format!("not an aims-evidence ledger entry: {err}"))?;
    Ok(Checked {
        record_id,
        typed_id: false,
        entry: Box::new(entry),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(metadata: Value) -> EvidenceRecord {
        serde_json::from_value(json!({
            "v": 1, "agent": "a", "source": {"id": "s", "type": "dir"},
            "locator": "dir:///srv/é \"q\"\\\u{7}/report.json", "version": "1",
            "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "size": 12_345_678_901u64, "observed_at": "2026-11-20T10:00:00Z", "system": "x",
            "kind": "validation_report", "metadata": metadata,
            "artifact_time": "2026-11-19T08:00:00.5Z"
        }))
        .unwrap()
    }

    /// Entries as the server writes them: the canonical encoding of the typed entry.
    fn server_entries() -> Vec<Vec<u8>> {
        let t = Timestamp::parse_utc("2026-11-20T10:00:01.250Z").unwrap();
        let metadata = [
            json!({}),
            json!({"decision": "pass", "accuracy": 0.9312, "n": 1e21, "tiny": 5e-324,
                   "nested": {"b": [1, -2.5, null, true], "a": "😀\u{e000}"}, "\u{e000}": 1, "😀": 2}),
            json!({"big": u64::MAX, "neg": i64::MIN, "ctl": "\u{0}\u{1f}\t\n"}),
        ];
        let mut out: Vec<Vec<u8>> = metadata
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                LedgerEntry::evidence(record(m), "agent-1", t, (i > 0).then(|| i as u64 - 1))
                    .canonical_bytes()
                    .unwrap()
            })
            .collect();
        let c: Confirmation = serde_json::from_value(json!({
            "v": 1, "agent": "a", "source": {"id": "s", "type": "dir"},
            "observed_at": "2026-11-20T11:00:00Z", "count": 2,
            "digest": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        }))
        .unwrap();
        out.push(
            LedgerEntry::confirmation(c, "agent-1", t, None)
                .canonical_bytes()
                .unwrap(),
        );
        out
    }

    /// The fast path accepts what the server writes and computes what the slow path computes:
    /// the same entry, the same record id, and that id is also the typed record's id.
    #[test]
    fn fast_path_agrees_with_the_slow_path() {
        let mut buffers = jcs::Buffers::default();
        for bytes in server_entries() {
            let fast = fast_entry(&bytes, &mut buffers).expect("fast path");
            let slow = slow_entry(&bytes).unwrap();
            assert_eq!(fast.record_id, slow.record_id);
            assert_eq!(fast.entry, slow.entry);
            assert!(fast.typed_id && !slow.typed_id);
            if let Some(r) = &fast.entry.record {
                assert_eq!(r.record_id().unwrap(), fast.record_id);
            }
        }
    }

    /// Lines that are not exactly the typed entry's encoding go to the slow path, which decides
    /// as before: some are still canonical entries (an explicit null, a timestamp without
    /// milliseconds), others are not.
    #[test]
    fn other_lines_take_the_slow_path() {
        let good = String::from_utf8(server_entries()[0].clone()).unwrap();
        let mut buffers = jcs::Buffers::default();
        let canonical_but_not_typed = [
            good.replace(
                r#""artifact_time":"2026-11-19T08:00:00.500Z","#,
                r#""artifact_time":null,"#,
            ),
            good.replace("2026-11-20T10:00:00.000Z", "2026-11-20T10:00:00Z"),
            good.replace(r#""event":"observed","#, ""),
        ];
        for line in &canonical_but_not_typed {
            assert_ne!(line, &good);
            assert!(
                fast_entry(line.as_bytes(), &mut buffers).is_none(),
                "{line}"
            );
            let slow = slow_entry(line.as_bytes()).unwrap();
            assert!(!slow.typed_id);
            assert_eq!(
                check_line(line.as_bytes(), None, &mut buffers)
                    .entry
                    .unwrap()
                    .record_id,
                slow.record_id
            );
        }
        let v: Value = serde_json::from_str(&good).unwrap();
        let not_canonical = [
            serde_json::to_string_pretty(&v).unwrap(),
            good.replacen(
                r#"{"agent":"agent-1","prev":null,"#,
                r#"{"prev":null,"agent":"agent-1","#,
                1,
            ),
            good.replace("12345678901", "12345678901.0"),
        ];
        for line in &not_canonical {
            assert_ne!(line, &good);
            assert!(
                fast_entry(line.as_bytes(), &mut buffers).is_none(),
                "{line}"
            );
            assert_eq!(
                check_line(line.as_bytes(), None, &mut buffers)
                    .entry
                    .err()
                    .as_deref(),
                Some("entry is not in RFC 8785 canonical form"),
                "{line}"
            );
        }
        let line = good.replace(r#""kind":"#, r#""extra":1,"kind":"#);
        assert!(
            check_line(line.as_bytes(), None, &mut buffers)
                .entry
                .is_err_and(|e| e.starts_with("not an aims-evidence ledger entry"))
        );
        assert!(
            check_line(b"{", None, &mut buffers)
                .entry
                .is_err_and(|e| e.starts_with("not JSON"))
        );
    }

    #[test]
    fn lines_of_the_entries_file() {
        assert_eq!(split_lines(b""), Some(vec![]));
        assert_eq!(split_lines(b"a\n"), Some(vec![&b"a"[..]]));
        assert_eq!(split_lines(b"a\n\nb\n"), Some(vec![&b"a"[..], b"", b"b"]));
        assert_eq!(split_lines(b"a\nb"), None);
    }
}
