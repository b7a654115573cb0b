//! The bundle's README: its layout and the commands that check it with standard tools. Not bound
//! to the checkpoint (it says so): a reader compares it with what they pinned.

use super::{ExportOptions, scan::Anchor};
use crate::AppState;

pub(super) fn readme(state: &AppState, anchor: &Anchor, opts: &ExportOptions) -> String {
    let origin = state.keys.origin();
    let size = anchor.stored.size;
    let scope = match &opts.system {
        Some(s) => format!(
            "**partial**: the entries of AI system `{s}` (plus every earlier version their `prev` \
             links reach); `log/index.txt` gives the leaf index of each line, and each entry is \
             anchored by its receipt in `proofs/`"
        ),
        None => format!(
            "**full**: every ledger entry `0..{size}`, so the root can be recomputed and nothing \
             can have been left out"
        ),
    };
    let since = opts
        .since
        .map(|m| format!("| `consistency/{m}-{size}.txt` | RFC 6962 consistency proof from tree size {m} to {size}, one base64 hash per line |\n"))
        .unwrap_or_default();
    let receipts = if opts.system.is_some() || opts.receipts {
        "| `proofs/<record_id>.tlog-proof` | a `c2sp.org/tlog-proof@v1` receipt per entry: its inclusion proof and the checkpoint |\n"
    } else {
        ""
    };
    README
        .replace("@ORIGIN@", origin)
        .replace("@RECEIPTS@", receipts)
        .replace("@SIZE@", &size.to_string())
        .replace("@SCOPE@", &scope)
        .replace("@SINCE@", &since)
}

const README: &str = r#"# aims-evidence audit bundle

Ledger `@ORIGIN@`, anchored to its checkpoint at tree size @SIZE@. Scope: @SCOPE@.

The checkpoint is a C2SP signed note: the log key (Ed25519, named after the origin) signs the
three-line body (origin, size, base64 root), and a separate clock key adds a timestamped
`cosignature/v1`: the evidence in this bundle existed no later than that time.

## Layout

| path | content |
|---|---|
| `MANIFEST.json` | format, origin, tree size, root, checkpoint time, catalog version and hash, scope, counts, file list |
| `SHA256SUMS` | `sha256sum` lines over every other file |
| `checkpoint` | the full signed note (log signature and clock cosignature) |
| `checkpoint.body` | the exact signed text (origin, size, root; final newline included) |
| `checkpoint.sig` | the log key's 64-byte Ed25519 signature over `checkpoint.body` (key ID stripped) |
| `checkpoint.cosig.msg` | the message the clock signed: `cosignature/v1`, `time <unix seconds>`, then the body |
| `checkpoint.cosig.sig` | the clock key's 64-byte Ed25519 signature over `checkpoint.cosig.msg` |
| `log/entries.jsonl` | one ledger entry per line, exactly the bytes its leaf hashes (the newline is not hashed); in a full export line N holds leaf N-1 |
| `log/index.txt` | partial exports only: the leaf index of each line of `log/entries.jsonl` |
@RECEIPTS@@SINCE@| `oscal/assessment-results.json` | OSCAL 1.2.3 assessment results: one finding per (system, control), one observation per record the status rests on |
| `oscal/catalog.json` | the OSCAL catalog of the ISO/IEC 42001 Annex A controls used |
| `catalog/*.yaml` | the catalog data (controls, kinds, rules, requirements, maturity levels) the assessment used |
| `confirmations/<sha256>.json` | the listing each confirmation entry names (the canonical JSON whose SHA-256 the signed entry holds): which artifacts a source still listed, with which content, at the confirmation's time |
| `trust/policy.txt`, `trust/log.pub.pem`, `trust/clock.pub.pem` | **convenience copies only**: a copy inside the bundle proves nothing; compare them with the keys you pinned |

Each entry is the RFC 8785 (JCS) JSON `{"v":1,"type":"evidence","record":…,"agent":…,
"received_at":…,"prev":…}` (or `"type":"confirmation"` with a `"confirmation"` object instead of
`"record"`). Leaf hash = SHA-256(0x00 ‖ entry), node = SHA-256(0x01 ‖ left ‖ right) (RFC 6962). A
record's ID is the SHA-256 of the JCS encoding of its `record` object; `prev` is the leaf of the
previous entry for the same (source id, locator) (for confirmations: the same source), so a
left-out version is visible.

The OSCAL findings are the assessment of these entries with the bundled catalog as of the
checkpoint's cosigned time; `aims-verify` recomputes it and fails on any difference. This README,
`oscal/catalog.json` and `trust/` are not bound to the checkpoint: read them, do not trust them.

## Checking it

Pin the server's trust policy out of band (`aims-server keys show` prints it) and keep it as
`policy.txt`; then:

```sh
aims-verify bundle.tar.gz --trust policy.txt          # exit 0 verified, 1 failure, 2 usage/IO
```

The same checks with standard tools, from the extracted bundle
(`mkdir b && tar -xzf bundle.tar.gz -C b && cd b`):

```sh
sha256sum -c SHA256SUMS
openssl pkeyutl -verify -pubin -inkey trust/log.pub.pem -rawin -in checkpoint.body -sigfile checkpoint.sig
openssl pkeyutl -verify -pubin -inkey trust/clock.pub.pem -rawin -in checkpoint.cosig.msg -sigfile checkpoint.cosig.sig
python3 "$AIMS_SRC/server/verify/scripts/merkle.py" .
```

`merkle.py` is the independent Python re-computation of the Merkle root (standard library only)
that comes with the aims-verify sources (`$AIMS_SRC` is your copy of them): a script shipped inside
a bundle would be written by whoever made the bundle, so none is.

The PEM files in `trust/` are copies from the server; to check against your pinned policy instead,
make the PEM from its `log` line (and likewise from the `witness clock` line):

```sh
vkey=$(awk '$1 == "log" {print $2}' policy.txt)
{ printf '\060\052\060\005\006\003\053\145\160\003\041\000'; printf %s "$vkey" | cut -d+ -f3- | base64 -d | tail -c 32; } \
  | openssl pkey -pubin -inform DER -out pinned-log.pub.pem
```

The leaf hash of line N (leaf N-1) of `log/entries.jsonl`:

```sh
sed -n "${N}p" log/entries.jsonl | tr -d '\n' | { printf '\000'; cat; } | sha256sum
```

Keep `checkpoint` from this bundle. Next time, ask for `GET /v1/export?since=<its size>` (or
`aims-server export --since <size>`) and run `aims-verify NEW.tar.gz --trust policy.txt
--previous checkpoint` to prove the log only grew.

## What this proves

Content is bound by each record's SHA-256 and size; every entry existed no later than the
cosigned time; any alteration, removal or reordering of an entry breaks the root (full exports) or
its receipt; consistency with your previous checkpoint shows nothing was deleted since. Not
covered: a stolen log key combined with a split view, unless independent witnesses or a TSA are
configured. `observed_at` is the agent's claim, bounded by the cosigned time.
"#;
