//! OSCAL 1.2.3 output (integrity.md §6.11–6.12): the assessment results of one export and the
//! catalog of the 38 Annex A controls.
//!
//! Both functions are pure: the same input gives byte-identical JSON. Every UUID is a version 5
//! UUID of [`UUID_NAMESPACE`] and a name that says what it identifies (see [`uuid_for`]), maps
//! are `serde_json::Map`s and every list is built in a fixed order (ledger order, system ID,
//! control ID order). The caller fixes `generated_at` (normally to the checkpoint time).
//!
//! UUID names:
//!
//! | name                              | identifies                                       |
//! |-----------------------------------|--------------------------------------------------|
//! | `record:<record_id>`              | back-matter resource of one evidence record      |
//! | `observation:<record_id>`         | observation of one evidence record               |
//! | `system:<id>`                     | component of one AI system                       |
//! | `finding:<system>:<control>`      | finding of one (system, control)                 |
//! | `checkpoint:<size>`               | back-matter resource of the anchoring checkpoint |
//! | `plan:<catalog hash>`             | the implicit continuous-assessment plan          |
//! | `catalog:<catalog hash>`          | back-matter resource describing the catalog      |
//! | `oscal-catalog:<catalog hash>`    | the OSCAL catalog document                       |
//! | `component:aims-evidence`         | the aims-evidence tool component                 |
//! | `assessment-platform:aims-evidence` | the assessment platform using that component   |
//! | `result:<origin>:<size>`          | the one result of an export                      |
//! | `assessment-results:<sha256>`     | the document; SHA-256 of its own JSON without it |
//!
//! Hrefs that are not `#<uuid>` fragments are paths relative to the root of the export bundle
//! (integrity.md §6.8: `blobs/sha256/<hex>`, `catalog/<file>`, `oscal/catalog.json`), the same
//! convention as the blob hrefs the caller supplies; source locators are written as they are,
//! percent-encoded where RFC 3986 requires.
//!
//! Schema rules honoured throughout: arrays are never empty (they are omitted instead), only
//! keys the 1.2.3 schema knows are written, tokens start with a letter or `_`, date-times carry
//! `Z`, single-line markup has no line breaks, and custom props carry `ns` = [`PROP_NS`].

use std::collections::{BTreeMap, BTreeSet};

use aims_catalog::Catalog;
use aims_model::wire::ControlView;
use aims_model::{ContentHash, ControlStatus, EvidenceRecord, RecordEvent, Timestamp};
use aims_store::{StoredCheckpoint, StoredEvidence};
use base64::Engine;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The OSCAL version both documents declare.
pub const OSCAL_VERSION: &str = "1.2.3";

/// Namespace of every `prop` aims-evidence defines.
pub const PROP_NS: &str = "urn:aims-evidence:oscal";

/// Our own fixed namespace for v5 UUIDs. Never change it: every exported UUID derives from it.
pub const UUID_NAMESPACE: Uuid = Uuid::from_u128(0xc79a3359_a742_49cc_a907_908eba8073e2);

/// Where the export bundle keeps the OSCAL catalog (relative to the bundle root).
pub const OSCAL_CATALOG_HREF: &str = "oscal/catalog.json";

/// Where the export bundle keeps the catalog's data files (relative to the bundle root).
pub const CATALOG_DATA_DIR: &str = "catalog/";

/// Title of the OSCAL catalog.
pub const CATALOG_TITLE: &str = "ISO/IEC 42001:2023 Annex A (aims-evidence paraphrase)";

/// Maps an artifact's SHA-256 to its href in the bundle (`blobs/sha256/<hex>`), or `None` when
/// the bundle does not carry the blob.
pub type BlobHref<'a> = dyn Fn(&ContentHash) -> Option<String> + 'a;

/// Everything one assessment-results document is built from.
pub struct OscalInput<'a> {
    /// Controls, kinds, requirements.
    pub catalog: &'a Catalog,
    /// Ledger origin (checkpoint origin line).
    pub origin: &'a str,
    /// Materialised status per system: `(system id, control views)`.
    pub systems: &'a [(String, Vec<ControlView>)],
    /// The records in scope, in ledger order.
    pub records: &'a [StoredEvidence],
    /// The checkpoint the export is anchored to.
    pub checkpoint: &'a StoredCheckpoint,
    /// Document time (`metadata.last-modified` and the result's `end`).
    pub generated_at: Timestamp,
    /// `blobs/sha256/<hex>` (or similar) when the bundle carries the artifact's bytes.
    pub blob_href: Option<&'a BlobHref<'a>>,
    /// An assessment period: the result's `start` and `end` (the findings are the status at its
    /// end). `None`: from the oldest record to `generated_at`.
    pub period: Option<(Timestamp, Timestamp)>,
}

/// The v5 UUID of `name` in [`UUID_NAMESPACE`].
pub fn uuid_for(name: &str) -> Uuid {
    Uuid::new_v5(&UUID_NAMESPACE, name.as_bytes())
}

fn uuid_str(name: &str) -> String {
    uuid_for(name).to_string()
}

/// The OSCAL control ID of an Annex A control: `A.6.2.4` → `a.6.2.4`.
pub fn control_id(id: &str) -> String {
    token(&id.to_ascii_lowercase())
}

/// The statement part ID of a control: `A.6.2.4` → `a.6.2.4_smt` (the findings' target).
pub fn statement_id(id: &str) -> String {
    format!("{}_smt", control_id(id))
}

// ---------------------------------------------------------------------------------------------
// Datatype helpers
// ---------------------------------------------------------------------------------------------

/// A TokenDatatype: letters, digits, `.`, `-`, `_`, starting with a letter or `_`.
fn token(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

/// A StringDatatype (shared with the verifier, which compares values through it).
fn string(s: &str) -> String {
    aims_model::text::oscal_string(s)
}

/// A MarkupLineDatatype: one non-empty line.
fn line(s: &str) -> String {
    string(s)
}

/// Inline code in Markdown for values such as locators.
fn code(s: &str) -> String {
    let s = string(s);
    let ticks = "`".repeat(longest_run(&s, '`') + 1);
    if s.starts_with('`') || s.ends_with('`') {
        format!("{ticks} {s} {ticks}")
    } else {
        format!("{ticks}{s}{ticks}")
    }
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for ch in s.chars() {
        if ch == c {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// A URI reference (RFC 3986): characters outside the allowed set are percent-encoded, as are
/// a `%` that starts no escape and every `#` after the first.
fn uri_ref(s: &str) -> String {
    let bytes = s.trim().as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut seen_hash = false;
    for (i, &b) in bytes.iter().enumerate() {
        let keep = match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => true,
            b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b'?' | b'@' => true,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => true,
            b'#' => !std::mem::replace(&mut seen_hash, true),
            b'%' => {
                bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            }
            _ => false,
        };
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() { "#".to_owned() } else { out }
}

/// Builds a prop in our namespace.
fn prop(name: &str, value: &str) -> Value {
    json!({"name": name, "ns": PROP_NS, "value": string(value)})
}

/// A prop with `class` and/or `group` (both tokens).
fn prop_with(name: &str, value: &str, class: Option<&str>, group: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    m.insert("ns".into(), PROP_NS.into());
    m.insert("value".into(), string(value).into());
    if let Some(c) = class {
        m.insert("class".into(), token(c).into());
    }
    if let Some(g) = group {
        m.insert("group".into(), token(g).into());
    }
    Value::Object(m)
}

fn sha256_hash(h: &ContentHash) -> Value {
    json!([{"algorithm": "SHA-256", "value": h.as_str()}])
}

/// Inserts `key: array` only when the array is not empty.
fn put_array(m: &mut Map<String, Value>, key: &str, items: Vec<Value>) {
    if !items.is_empty() {
        m.insert(key.to_owned(), Value::Array(items));
    }
}

fn status_reason(s: ControlStatus) -> Option<(&'static str, &'static str)> {
    match s {
        ControlStatus::Fresh => Some(("satisfied", "pass")),
        ControlStatus::Stale | ControlStatus::Drifted => Some(("not-satisfied", "fail")),
        ControlStatus::Missing => Some(("not-satisfied", "other")),
        // OSCAL has no objective state for "does not apply"; the finding's `status` prop says
        // `excluded` and its description carries the justification.
        ControlStatus::Excluded => Some(("not-satisfied", "other")),
        ControlStatus::NotApplicable => None,
    }
}

/// When a record's evidence stops being current: its time basis (artifact date for kinds
/// measured from it, otherwise observation) plus the kind's default window. `None` for `gone`
/// records (they state an absence, which does not go stale) and for kinds the catalog lacks.
fn expiry(catalog: &Catalog, r: &EvidenceRecord) -> Option<Timestamp> {
    if r.event == RecordEvent::Gone {
        return None;
    }
    if let Some(t) = aims_model::upload::upload_expiry(r) {
        return Some(t);
    }
    let kind = catalog.kind(&r.kind)?;
    r.effective_time(kind.time.prefers_artifact_time())
        .checked_add_days(kind.freshness_days)
}

fn kind_title<'c>(catalog: &'c Catalog, kind: &'c str) -> &'c str {
    catalog.kind(kind).map_or(kind, |k| k.title.as_str())
}

fn control_order(catalog: &Catalog, id: &str) -> (usize, String) {
    let pos = catalog
        .controls()
        .iter()
        .position(|c| c.id == id)
        .unwrap_or(usize::MAX);
    (pos, id.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Assessment results
// ---------------------------------------------------------------------------------------------

/// The OSCAL 1.2.3 `assessment-results` document of one export (integrity.md §6.11).
pub fn assessment_results(input: &OscalInput<'_>) -> Value {
    let catalog = input.catalog;
    let cp = input.checkpoint;
    let platform_component = uuid_str("component:aims-evidence");
    let platform = uuid_str("assessment-platform:aims-evidence");
    let plan_res = uuid_str(&format!("plan:{}", catalog.hash()));
    let catalog_res = uuid_str(&format!("catalog:{}", catalog.hash()));
    let checkpoint_res = uuid_str(&format!("checkpoint:{}", cp.size));

    // Records in ledger order, each once.
    let mut records: Vec<&StoredEvidence> = input.records.iter().collect();
    records.sort_by(|a, b| {
        (a.leaf_index, a.record_id.as_str()).cmp(&(b.leaf_index, b.record_id.as_str()))
    });
    let mut seen = BTreeSet::new();
    records.retain(|r| seen.insert(r.record_id.clone()));
    let leaf_of: BTreeMap<&str, u64> = records
        .iter()
        .map(|r| (r.record_id.as_str(), r.leaf_index))
        .collect();

    // Systems: every system with a status or with a record, by ID.
    let mut views: BTreeMap<&str, Vec<&ControlView>> = BTreeMap::new();
    for (id, cvs) in input.systems {
        views.entry(id.as_str()).or_default().extend(cvs.iter());
    }
    let mut system_ids: BTreeSet<&str> = views.keys().copied().collect();
    system_ids.extend(records.iter().map(|r| r.record.system.as_str()));

    // --- components --------------------------------------------------------------------------
    let mut components = vec![json!({
        "uuid": platform_component,
        "type": "software",
        "title": "aims-evidence",
        "description": "Continuous compliance evidence for ISO/IEC 42001: agents hash artifacts \
            at their sources, the server appends the records to an RFC 6962 ledger and assesses \
            every AI system against Annex A.",
        "props": [
            prop("software-version", env!("CARGO_PKG_VERSION")),
        ],
        "status": {"state": "operational"},
    })];
    for sys in &system_ids {
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for v in views.get(sys).into_iter().flatten() {
            *counts.entry(v.status.as_str()).or_default() += 1;
        }
        let n_records = records.iter().filter(|r| r.record.system == *sys).count();
        let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let mut description = format!(
            "AI system {} as named in the evidence records. This export holds {n_records} of its records.",
            code(sys)
        );
        if !summary.is_empty() {
            description.push_str(&format!(" Controls: {}.", summary.join(", ")));
        }
        let mut props = vec![prop("system-id", sys)];
        for (s, n) in &counts {
            props.push(prop_with("controls", &n.to_string(), Some(s), None));
        }
        components.push(json!({
            "uuid": uuid_str(&format!("system:{sys}")),
            "type": "this-system",
            "title": line(&format!("AI system {sys}")),
            "description": description,
            "props": props,
            "status": {
                "state": "other",
                "remarks": "aims-evidence does not track the life-cycle state of AI systems.",
            },
        }));
    }
    let local_definitions = json!({
        "components": components,
        "assessment-assets": {
            "assessment-platforms": [{
                "uuid": platform,
                "title": "aims-evidence",
                "uses-components": [{"component-uuid": platform_component}],
            }],
        },
    });

    // --- observations and their back-matter resources ----------------------------------------
    let mut observations = Vec::with_capacity(records.len());
    let mut record_resources = Vec::with_capacity(records.len());
    for s in &records {
        let r = &s.record;
        let rid = s.record_id.as_str();
        let res_uuid = uuid_str(&format!("record:{rid}"));
        let ktitle = kind_title(catalog, &r.kind);
        let gone = r.event == RecordEvent::Gone;

        let what = if gone {
            format!(
                "Agent {} reported {} gone from its source at {}. The last content it saw had \
                 SHA-256 {} ({} bytes).",
                code(&r.agent),
                code(&r.locator),
                r.observed_at,
                r.sha256,
                r.size
            )
        } else {
            format!(
                "Agent {} observed {} (version {}, {} bytes, SHA-256 {}) at {}.",
                code(&r.agent),
                code(&r.locator),
                code(&r.version),
                r.size,
                r.sha256,
                r.observed_at
            )
        };
        let mut description = format!(
            "{what} Ledger entry {} holds the record {} of kind {} for AI system {}.",
            s.leaf_index,
            rid,
            code(&r.kind),
            code(&r.system)
        );
        if let Some(t) = r.artifact_time {
            description.push_str(&format!(" The artifact is dated {t}."));
        }

        let mut ev_props = vec![
            prop("record-id", rid),
            prop("ledger-index", &s.leaf_index.to_string()),
            prop("locator", &r.locator),
            prop("kind", &r.kind),
            prop("sha256", r.sha256.as_str()),
        ];
        if gone {
            ev_props.push(prop("event", r.event.as_str()));
        }
        let mut obs = Map::new();
        obs.insert(
            "uuid".into(),
            uuid_str(&format!("observation:{rid}")).into(),
        );
        obs.insert(
            "title".into(),
            line(&format!(
                "{ktitle}{}: {}",
                if gone { " (gone)" } else { "" },
                r.locator
            ))
            .into(),
        );
        obs.insert("description".into(), description.into());
        obs.insert(
            "props".into(),
            json!([
                prop("system", &r.system),
                prop("event", r.event.as_str()),
                prop("agent", &s.agent),
                prop(
                    "source",
                    &format!("{}:{}", r.source.source_type, r.source.id)
                ),
            ]),
        );
        obs.insert("methods".into(), json!(["TEST"]));
        obs.insert("types".into(), json!(["control-objective"]));
        obs.insert(
            "origins".into(),
            json!([{"actors": [{"type": "tool", "actor-uuid": platform_component}]}]),
        );
        obs.insert(
            "subjects".into(),
            json!([{
                "subject-uuid": uuid_str(&format!("system:{}", r.system)),
                "type": "component",
            }]),
        );
        obs.insert(
            "relevant-evidence".into(),
            json!([{
                "href": format!("#{res_uuid}"),
                "description": line(&format!(
                    "Evidence record {rid} (ledger entry {}): {ktitle} at {}",
                    s.leaf_index, r.locator
                )),
                "props": ev_props,
            }]),
        );
        obs.insert("collected".into(), r.observed_at.to_string().into());
        if let Some(t) = expiry(catalog, r) {
            obs.insert("expires".into(), t.to_string().into());
        }
        observations.push(Value::Object(obs));

        // Resource.
        let mut rlinks =
            vec![json!({"href": uri_ref(&r.locator), "hashes": sha256_hash(&r.sha256)})];
        if let Some(href) = input.blob_href.and_then(|f| f(&r.sha256)) {
            rlinks.push(json!({
                "href": uri_ref(&href),
                "media-type": "application/octet-stream",
                "hashes": sha256_hash(&r.sha256),
            }));
        }
        let mut props = vec![
            prop("record-id", rid),
            prop("ledger-index", &s.leaf_index.to_string()),
            prop("sha256", r.sha256.as_str()),
            prop("size", &r.size.to_string()),
            prop("locator", &r.locator),
            prop("version", &r.version),
            prop("kind", &r.kind),
            prop("system", &r.system),
            prop("event", r.event.as_str()),
            prop("observed-at", &r.observed_at.to_string()),
            prop("received-at", &s.received_at.to_string()),
        ];
        if let Some(t) = r.artifact_time {
            props.push(prop("artifact-time", &t.to_string()));
        }
        if let Some(p) = s.prev {
            props.push(prop("prev-ledger-index", &p.to_string()));
        }
        record_resources.push(json!({
            "uuid": res_uuid,
            "title": line(&format!("Evidence record {rid}")),
            "description": format!(
                "{} at {}{}. The record is leaf {} of the ledger {}; its ID is the SHA-256 of \
                 its RFC 8785 canonical JSON.",
                ktitle,
                code(&r.locator),
                if gone { ", reported gone" } else { "" },
                s.leaf_index,
                code(input.origin)
            ),
            "props": props,
            "rlinks": rlinks,
        }));
    }

    // --- findings and reviewed controls ------------------------------------------------------
    let mut findings = Vec::new();
    let mut risks: Vec<Value> = Vec::new();
    let mut applicable: BTreeSet<(usize, String)> = BTreeSet::new();
    let mut not_applicable: BTreeSet<(usize, String)> = BTreeSet::new();
    for (sys, cvs) in &views {
        // Catalog order; a control listed twice for one system keeps its first view.
        let mut cvs = cvs.clone();
        cvs.sort_by_key(|v| control_order(catalog, &v.control));
        cvs.dedup_by(|b, a| a.control == b.control);
        for v in cvs {
            let key = control_order(catalog, &v.control);
            let Some((state, reason)) = status_reason(v.status) else {
                not_applicable.insert(key);
                continue;
            };
            applicable.insert(key);
            let (f, r) = finding(catalog, sys, v, state, reason, &platform, &leaf_of);
            findings.push(f);
            risks.extend(r);
        }
    }
    not_applicable.retain(|k| !applicable.contains(k));
    let select = |set: &BTreeSet<(usize, String)>| -> Vec<Value> {
        set.iter()
            .map(|(_, id)| json!({"control-id": control_id(id)}))
            .collect()
    };
    let mut selection = Map::new();
    if applicable.is_empty() {
        selection.insert("include-all".into(), json!({}));
        selection.insert(
            "remarks".into(),
            "No control was applicable to any AI system in this export.".into(),
        );
    } else {
        selection.insert("include-controls".into(), Value::Array(select(&applicable)));
    }
    if !not_applicable.is_empty() {
        selection.insert(
            "exclude-controls".into(),
            Value::Array(select(&not_applicable)),
        );
        if !applicable.is_empty() {
            selection.insert(
                "remarks".into(),
                "Excluded controls require nothing of any AI system in scope and no evidence \
                 maps to them."
                    .into(),
            );
        }
    }
    let reviewed_controls = json!({"control-selections": [Value::Object(selection)]});

    // --- result ------------------------------------------------------------------------------
    let start = match input.period {
        Some((from, _)) => from,
        None => records
            .iter()
            .map(|r| r.record.observed_at)
            .min()
            .unwrap_or(input.generated_at),
    };
    let root_hex = hex::encode(cp.root);
    let mut result = Map::new();
    result.insert(
        "uuid".into(),
        uuid_str(&format!("result:{}:{}", input.origin, cp.size)).into(),
    );
    result.insert(
        "title".into(),
        line(&format!(
            "Continuous assessment of {} at ledger size {}",
            input.origin, cp.size
        ))
        .into(),
    );
    result.insert(
        "description".into(),
        format!(
            "Status of every assessed ISO/IEC 42001 Annex A control for {} AI system(s), computed \
             by aims-evidence from {} evidence record(s) of the ledger {} up to its checkpoint \
             at size {} (root {root_hex}). One observation per record, one finding per \
             applicable (system, control).",
            system_ids.len(),
            records.len(),
            code(input.origin),
            cp.size
        )
        .into(),
    );
    result.insert("start".into(), start.to_string().into());
    let end = input.period.map_or(input.generated_at, |(_, to)| to);
    result.insert("end".into(), end.to_string().into());
    result.insert(
        "props".into(),
        json!([
            prop("origin", input.origin),
            prop("checkpoint-size", &cp.size.to_string()),
            prop("checkpoint-root", &root_hex),
            prop("records", &records.len().to_string()),
        ]),
    );
    result.insert(
        "links".into(),
        json!([{"href": format!("#{checkpoint_res}"), "rel": "reference", "text": "Ledger checkpoint"}]),
    );
    result.insert("local-definitions".into(), local_definitions);
    result.insert("reviewed-controls".into(), reviewed_controls);
    put_array(&mut result, "observations", observations);
    put_array(&mut result, "findings", findings);
    put_array(&mut result, "risks", risks);

    // --- back matter -------------------------------------------------------------------------
    let mut resources = vec![
        plan_resource(catalog, input.origin, &plan_res, &catalog_res),
        catalog_resource(catalog, &catalog_res),
        checkpoint_resource(input.origin, cp, &checkpoint_res),
    ];
    resources.extend(record_resources);

    let mut doc = Map::new();
    doc.insert("uuid".into(), Value::Null); // filled in below
    doc.insert(
        "metadata".into(),
        json!({
            "title": line(&format!(
                "ISO/IEC 42001 Annex A assessment results: {} at ledger size {}",
                input.origin, cp.size
            )),
            "last-modified": input.generated_at.to_string(),
            "version": format!("ledger-size-{}", cp.size),
            "oscal-version": OSCAL_VERSION,
            "props": [
                prop("origin", input.origin),
                prop("checkpoint-size", &cp.size.to_string()),
                prop("catalog-version", catalog.version()),
                prop("catalog-hash", catalog.hash().as_str()),
            ],
            "remarks": "Generated by aims-evidence. Every UUID is a version 5 UUID derived from \
                what it identifies, so the same checkpoint always exports the same document. \
                Control IDs are ISO/IEC 42001:2023 Annex A IDs in lower case (A.6.2.4 is \
                a.6.2.4); findings target their statement parts in the aims-evidence OSCAL \
                catalog.",
        }),
    );
    doc.insert(
        "import-ap".into(),
        json!({
            "href": format!("#{plan_res}"),
            "remarks": "aims-evidence assesses continuously against its catalog; there is no \
                separate assessment-plan document. The referenced resource describes the plan.",
        }),
    );
    doc.insert("results".into(), json!([Value::Object(result)]));
    doc.insert("back-matter".into(), json!({"resources": resources}));

    // The document UUID names its content, so a different scope gives a different UUID.
    let body = serde_json::to_vec(&doc).unwrap_or_default();
    let digest = ContentHash::of(&body);
    doc.insert(
        "uuid".into(),
        uuid_str(&format!("assessment-results:{digest}")).into(),
    );
    json!({"assessment-results": Value::Object(doc)})
}

fn finding(
    catalog: &Catalog,
    sys: &str,
    v: &ControlView,
    state: &str,
    reason: &str,
    platform: &str,
    leaf_of: &BTreeMap<&str, u64>,
) -> (Value, Vec<Value>) {
    let title = catalog
        .control(&v.control)
        .map_or(v.title.as_str(), |c| c.title.as_str());
    let mut props = vec![
        prop("system", sys),
        prop("control", &v.control),
        prop("status", v.status.as_str()),
        prop("maturity", &v.maturity.to_string()),
    ];
    let mut description = string(&v.reason);
    if !v.maturity_reason.trim().is_empty() {
        description.push_str(&format!(
            "\n\nMaturity {} of 5: {}",
            v.maturity,
            string(&v.maturity_reason)
        ));
    }
    let mut risks = Vec::new();
    if description == "-" {
        description = format!("Status: {}.", v.status);
    }
    let mut lines = Vec::new();
    let mut related: BTreeSet<(u64, &str)> = BTreeSet::new();
    for e in &v.evidence {
        if let Some(&i) = leaf_of.get(e.record_id.as_str()) {
            related.insert((i, e.record_id.as_str()));
        }
    }
    for f in &v.findings {
        let group = format!("finding-{}", f.id);
        props.push(prop_with("finding-id", &f.id, None, Some(&group)));
        props.push(prop_with("drift", f.kind.as_str(), None, Some(&group)));
        props.push(prop_with("since", &f.since.to_string(), None, Some(&group)));
        if f.message.trim() != v.reason.trim() {
            lines.push(format!(
                "- {} since {}: {}",
                f.kind,
                f.since,
                string(&f.message)
            ));
        }
        for e in &f.evidence {
            if let Some(&i) = leaf_of.get(e.as_str()) {
                related.insert((i, e.as_str()));
            }
        }
        if let Some(ack) = &f.acknowledged {
            props.push(prop_with("accepted-by", &ack.by, None, Some(&group)));
            risks.push(accepted_risk(sys, &v.control, f, ack, leaf_of));
        }
    }
    if !lines.is_empty() {
        description.push_str("\n\n");
        description.push_str(&lines.join("\n"));
    }
    let mut m = Map::new();
    m.insert(
        "uuid".into(),
        uuid_str(&format!("finding:{sys}:{}", v.control)).into(),
    );
    m.insert(
        "title".into(),
        line(&format!("{sys}: {} {title}", v.control)).into(),
    );
    m.insert("description".into(), description.into());
    m.insert("props".into(), Value::Array(props));
    m.insert(
        "origins".into(),
        json!([{"actors": [{"type": "assessment-platform", "actor-uuid": platform}]}]),
    );
    m.insert(
        "target".into(),
        json!({
            "type": "statement-id",
            "target-id": statement_id(&v.control),
            "status": {"state": state, "reason": reason},
        }),
    );
    put_array(
        &mut m,
        "related-observations",
        related
            .iter()
            .map(|(_, id)| json!({"observation-uuid": uuid_str(&format!("observation:{id}"))}))
            .collect(),
    );
    put_array(
        &mut m,
        "related-risks",
        risks
            .iter()
            .filter_map(|r| r.get("uuid").cloned())
            .map(|u| json!({"risk-uuid": u}))
            .collect(),
    );
    (Value::Object(m), risks)
}

/// An accepted risk (an acknowledged finding, DESIGN §12.3) as an OSCAL risk: a deviation
/// approved by the admin who accepted it, until its expiry, with the reason as its statement.
fn accepted_risk(
    sys: &str,
    control: &str,
    f: &aims_model::Finding,
    ack: &aims_model::acknowledgement::Acknowledgement,
    leaf_of: &BTreeMap<&str, u64>,
) -> Value {
    let uuid = uuid_str(&format!("risk:{sys}:{control}:{}:{}", f.id, ack.at));
    let mut risk = Map::new();
    risk.insert("uuid".into(), uuid.clone().into());
    risk.insert(
        "title".into(),
        line(&format!("Accepted risk: {} on {sys} ({control})", f.kind)).into(),
    );
    risk.insert("description".into(), string(&f.message).into());
    risk.insert("statement".into(), string(&ack.reason).into());
    risk.insert(
        "props".into(),
        json!([prop("finding-id", &f.id), prop("accepted-by", &ack.by),]),
    );
    risk.insert("status".into(), "deviation-approved".into());
    risk.insert("deadline".into(), ack.expires_at.to_string().into());
    risk.insert(
        "risk-log".into(),
        json!({"entries": [{
            "uuid": uuid_str(&format!("risk-log:{uuid}")),
            "title": "Risk accepted",
            "description": format!("{} accepted the risk until {}: {}", ack.by, ack.expires_at, string(&ack.reason)),
            "start": ack.at.to_string(),
            "end": ack.expires_at.to_string(),
            "status-change": "deviation-approved",
        }]}),
    );
    let related: Vec<Value> = f
        .evidence
        .iter()
        .filter(|e| leaf_of.contains_key(e.as_str()))
        .map(|e| json!({"observation-uuid": uuid_str(&format!("observation:{e}"))}))
        .collect();
    put_array(&mut risk, "related-observations", related);
    Value::Object(risk)
}

fn plan_resource(catalog: &Catalog, origin: &str, uuid: &str, catalog_res: &str) -> Value {
    json!({
        "uuid": uuid,
        "title": "Continuous-assessment plan (implicit)",
        "description": format!(
            "aims-evidence assesses every AI system of the ledger {} continuously: agents record \
             evidence as artifacts change, and each control's status follows from the \
             requirements, freshness windows and drift rules of catalog version {} (SHA-256 {}, \
             framework {}). Every Annex A control with a requirement or with evidence is \
             assessed; the catalog is described by resource {catalog_res}.",
            code(origin),
            catalog.version(),
            catalog.hash(),
            catalog.framework()
        ),
        "props": [
            prop("catalog-version", catalog.version()),
            prop("catalog-hash", catalog.hash().as_str()),
            prop("framework", catalog.framework()),
        ],
        "rlinks": [{
            "href": OSCAL_CATALOG_HREF,
            "media-type": "application/oscal.catalog+json",
        }],
    })
}

fn catalog_resource(catalog: &Catalog, uuid: &str) -> Value {
    let mut props = vec![
        prop("catalog-version", catalog.version()),
        prop("catalog-hash", catalog.hash().as_str()),
        prop("framework", catalog.framework()),
    ];
    let mut files = Vec::new();
    let mut rlinks = Vec::new();
    for (name, text) in catalog.data_files() {
        let h = ContentHash::of(text.as_bytes());
        files.push(format!("- {}: SHA-256 {h}", code(name)));
        props.push(prop_with("data-file-sha256", h.as_str(), Some(name), None));
        rlinks.push(json!({
            "href": uri_ref(&format!("{CATALOG_DATA_DIR}{name}")),
            "media-type": "application/yaml",
            "hashes": sha256_hash(&h),
        }));
    }
    json!({
        "uuid": uuid,
        "title": line(&format!("aims-evidence catalog {} ({})", catalog.version(), catalog.framework())),
        "description": format!(
            "The catalog the assessment used: ISO/IEC 42001:2023 Annex A controls, evidence kinds, \
             recognition rules and requirements. Its hash is the SHA-256 over the data files in \
             this order, each preceded by its name, a newline, its length in bytes and a \
             newline:\n\n{}",
            files.join("\n")
        ),
        "props": props,
        "rlinks": rlinks,
    })
}

fn checkpoint_resource(origin: &str, cp: &StoredCheckpoint, uuid: &str) -> Value {
    let mut m = Map::new();
    m.insert("uuid".into(), uuid.into());
    m.insert(
        "title".into(),
        line(&format!("Ledger checkpoint: {origin}, size {}", cp.size)).into(),
    );
    m.insert(
        "description".into(),
        format!(
            "The signed checkpoint (C2SP signed note) this export is anchored to: ledger {} at \
             size {}, root {} (hex), signed at {}. The note text is attached in base64.",
            code(origin),
            cp.size,
            hex::encode(cp.root),
            cp.created_at
        )
        .into(),
    );
    m.insert(
        "props".into(),
        json!([
            prop("origin", origin),
            prop("size", &cp.size.to_string()),
            prop("root", &hex::encode(cp.root)),
            prop("created-at", &cp.created_at.to_string()),
            prop("note-sha256", ContentHash::of(cp.note.as_bytes()).as_str()),
        ]),
    );
    if !cp.note.is_empty() {
        m.insert(
            "base64".into(),
            json!({
                "filename": "checkpoint",
                "media-type": "text/plain",
                "value": base64::engine::general_purpose::STANDARD.encode(cp.note.as_bytes()),
            }),
        );
    }
    Value::Object(m)
}

// ---------------------------------------------------------------------------------------------
// Catalog
// ---------------------------------------------------------------------------------------------

/// `metadata.last-modified` of the catalog: the first day of the month its version names
/// (`2026.11.1` → 2026-11-01), so the output depends on the catalog alone.
fn catalog_date(version: &str) -> String {
    let mut parts = version.split('.');
    let year = parts.next().and_then(|y| y.parse::<u32>().ok());
    let month = parts.next().and_then(|m| m.parse::<u32>().ok());
    match (year, month) {
        (Some(y), Some(m)) if (1900..=2999).contains(&y) && (1..=12).contains(&m) => {
            format!("{y:04}-{m:02}-01T00:00:00Z")
        }
        _ => "2026-01-01T00:00:00Z".to_owned(),
    }
}

fn sort_id(id: &str) -> String {
    id.to_ascii_lowercase()
        .split('.')
        .map(|p| match p.parse::<u32>() {
            Ok(n) => format!("{n:02}"),
            Err(_) => p.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The OSCAL 1.2.3 catalog of the 38 Annex A controls (integrity.md §6.12).
pub fn catalog(catalog: &Catalog) -> Value {
    let mut groups = Vec::new();
    for g in catalog.groups() {
        let controls: Vec<Value> = catalog
            .controls()
            .iter()
            .filter(|c| c.group == g.id)
            .map(|c| control(catalog, c))
            .collect();
        let mut m = Map::new();
        m.insert("id".into(), control_id(&g.id).into());
        m.insert("class".into(), "objective".into());
        m.insert("title".into(), line(&g.title).into());
        m.insert(
            "props".into(),
            json!([
                {"name": "label", "value": string(&g.id)},
                {"name": "sort-id", "value": sort_id(&g.id)},
            ]),
        );
        put_array(&mut m, "controls", controls);
        groups.push(Value::Object(m));
    }
    let mut doc = Map::new();
    doc.insert(
        "uuid".into(),
        uuid_str(&format!("oscal-catalog:{}", catalog.hash())).into(),
    );
    doc.insert(
        "metadata".into(),
        json!({
            "title": CATALOG_TITLE,
            "last-modified": catalog_date(catalog.version()),
            "version": string(catalog.version()),
            "oscal-version": OSCAL_VERSION,
            "props": [
                prop("framework", catalog.framework()),
                prop("catalog-hash", catalog.hash().as_str()),
            ],
            "remarks": "Control IDs and short titles identify the controls of ISO/IEC 42001:2023 \
                Annex A. Every statement is aims-evidence's own one-sentence wording, not the \
                text of the standard; consult the standard for the normative requirements. \
                Props in the urn:aims-evidence:oscal namespace give the evidence kinds that \
                support each control and, where aims-evidence requires evidence, the required \
                kinds (alternatives share a group) and their freshness windows in days.",
        }),
    );
    put_array(&mut doc, "groups", groups);
    json!({"catalog": Value::Object(doc)})
}

fn control(catalog: &Catalog, c: &aims_catalog::Control) -> Value {
    let id = control_id(&c.id);
    let mut props = vec![
        json!({"name": "label", "value": string(&c.id)}),
        json!({"name": "sort-id", "value": sort_id(&c.id)}),
    ];
    for k in catalog.kinds() {
        let class = if k.controls.contains(&c.id) {
            "primary"
        } else if k.also.contains(&c.id) {
            "secondary"
        } else {
            continue;
        };
        let mut p = prop_with("evidence-kind", &k.name, Some(class), None);
        if let Value::Object(m) = &mut p {
            m.insert(
                "remarks".into(),
                format!(
                    "{}; default freshness window {} days, measured from the {} time.",
                    string(&k.title),
                    k.freshness_days,
                    if k.time.prefers_artifact_time() {
                        "artifact's own"
                    } else {
                        "observation"
                    }
                )
                .into(),
            );
        }
        props.push(p);
    }
    let mut parts = vec![json!({
        "id": format!("{id}_smt"),
        "name": "statement",
        "prose": c.description.trim(),
    })];
    if let Some(req) = catalog.requirement(&c.id) {
        for (i, alts) in req.requires.iter().enumerate() {
            let group = format!("requirement-{}", i + 1);
            for kname in alts {
                props.push(prop_with("required-kind", kname, None, Some(&group)));
                if let Some(kind) = catalog.kind(kname) {
                    props.push(prop_with(
                        "freshness-days",
                        &req.window_days(kind).to_string(),
                        Some(kname),
                        Some(&group),
                    ));
                }
            }
        }
        if !req.note.trim().is_empty() {
            parts.push(json!({
                "id": format!("{id}_gdn"),
                "name": "guidance",
                "prose": req.note.trim(),
            }));
        }
    }
    json!({
        "id": id,
        "title": line(&c.title),
        "props": props,
        "parts": parts,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use aims_catalog::Evidence;
    use aims_model::wire::EvidenceRef;
    use aims_model::{Finding, FindingKind};

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_utc(s).unwrap()
    }

    fn record(
        system: &str,
        kind: &str,
        path: &str,
        observed: &str,
        event: RecordEvent,
        artifact_time: Option<&str>,
        metadata: Value,
    ) -> EvidenceRecord {
        let mut r: EvidenceRecord = serde_json::from_value(json!({
            "v": 1, "agent": "cluster-a", "source": {"id": "repo", "type": "git"},
            "locator": format!("git+https://git.example/ml.git#{path}"),
            "version": "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
            "sha256": ContentHash::of(path.as_bytes()).as_str(),
            "size": 1234, "observed_at": observed, "system": system, "kind": kind,
            "metadata": metadata,
        }))
        .unwrap();
        r.event = event;
        r.artifact_time = artifact_time.map(ts);
        r
    }

    fn stored(records: Vec<EvidenceRecord>) -> Vec<StoredEvidence> {
        let mut prev_of: BTreeMap<String, u64> = BTreeMap::new();
        records
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                let i = i as u64;
                let prev = prev_of.insert(r.locator.clone(), i);
                StoredEvidence {
                    record_id: r.record_id().unwrap(),
                    leaf_index: i,
                    agent: r.agent.clone(),
                    received_at: r.observed_at,
                    prev,
                    record: r,
                    confirmed_at: None,
                }
            })
            .collect()
    }

    struct Fixture {
        catalog: Catalog,
        systems: Vec<(String, Vec<ControlView>)>,
        records: Vec<StoredEvidence>,
        checkpoint: StoredCheckpoint,
    }

    fn fixture() -> Fixture {
        let catalog = Catalog::embedded().unwrap();
        let o = RecordEvent::Observed;
        let records = stored(vec![
            record(
                "fraud",
                "validation_report",
                "fraud/validation.json",
                "2026-10-01T08:00:00Z",
                o,
                Some("2026-09-30T12:00:00Z"),
                json!({"decision": "pass"}),
            ),
            record(
                "fraud",
                "model_card",
                "fraud/model_card.md",
                "2026-11-20T10:00:00Z",
                o,
                None,
                json!({}),
            ),
            record(
                "fraud",
                "event_log_config",
                "fraud/logging.yaml",
                "2026-11-20T10:00:00Z",
                o,
                None,
                json!({}),
            ),
            record(
                "churn",
                "dataset_card",
                "churn/data card.md",
                "2026-11-01T09:00:00Z",
                o,
                Some("2025-01-01T00:00:00Z"),
                json!({}),
            ),
            record(
                "fraud",
                "event_log_config",
                "fraud/logging.yaml",
                "2026-11-21T10:00:00Z",
                RecordEvent::Gone,
                None,
                json!({}),
            ),
        ]);
        let now = ts("2026-11-22T00:00:00Z");
        let mut systems = Vec::new();
        for sys in ["fraud", "churn"] {
            let hist: Vec<Evidence> = records
                .iter()
                .filter(|s| s.record.system == sys)
                .map(|s| Evidence {
                    record_id: s.record_id.clone(),
                    leaf_index: s.leaf_index,
                    record: s.record.clone(),
                })
                .collect();
            let a = aims_catalog::assess(&catalog, sys, &hist, now);
            systems.push((sys.to_owned(), a.controls));
        }
        // A hand-made drifted view with a finding on a control outside A.6/A.7.
        let r0 = &records[0];
        systems[0].1.retain(|v| v.control != "A.8.2");
        systems[0].1.push(ControlView {
            control: "A.8.2".into(),
            title: "System documentation and information for users".into(),
            status: ControlStatus::Drifted,
            reason: "The model card changed after validation.".into(),
            evidence: vec![EvidenceRef {
                record_id: r0.record_id.clone(),
                sha256: r0.record.sha256.clone(),
                locator: r0.record.locator.clone(),
                kind: r0.record.kind.clone(),
                observed_at: r0.record.observed_at,
                event: r0.record.event,
            }],
            findings: vec![Finding::new(
                FindingKind::Changed,
                "fraud",
                vec!["A.8.2".into()],
                ts("2026-11-20T10:00:00Z"),
                vec![records[1].record_id.clone()],
                "The model card changed after\nits validation.".into(),
            )],
            maturity: 0,
            maturity_reason: String::new(),
            fresh_until: None,
        });
        let checkpoint = StoredCheckpoint {
            size: 5,
            root: [7; 32],
            note: "aims.example/ledger\n5\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n— aims.example/ledger abc=\n".into(),
            created_at: ts("2026-11-22T00:00:00Z"),
        };
        Fixture {
            catalog,
            systems,
            records,
            checkpoint,
        }
    }

    fn run(f: &Fixture, blobs: bool) -> Value {
        let href = |h: &ContentHash| Some(format!("blobs/sha256/{h}"));
        let input = OscalInput {
            catalog: &f.catalog,
            origin: "aims.example/ledger",
            systems: &f.systems,
            records: &f.records,
            checkpoint: &f.checkpoint,
            generated_at: f.checkpoint.created_at,
            blob_href: if blobs { Some(&href) } else { None },
            period: None,
        };
        assessment_results(&input)
    }

    fn no_empty(v: &Value, path: &str) {
        match v {
            Value::Array(a) => {
                assert!(!a.is_empty(), "empty array at {path}");
                for (i, x) in a.iter().enumerate() {
                    no_empty(x, &format!("{path}/{i}"));
                }
            }
            Value::Object(m) => {
                for (k, x) in m {
                    no_empty(x, &format!("{path}/{k}"));
                }
            }
            Value::String(s) => assert!(!s.is_empty(), "empty string at {path}"),
            _ => {}
        }
    }

    #[test]
    fn deterministic_and_complete() {
        let f = fixture();
        let a = serde_json::to_vec(&run(&f, true)).unwrap();
        let b = serde_json::to_vec(&run(&fixture(), true)).unwrap();
        assert_eq!(a, b);
        let c = serde_json::to_vec(&catalog(&f.catalog)).unwrap();
        assert_eq!(c, serde_json::to_vec(&catalog(&f.catalog)).unwrap());

        let doc = run(&f, true);
        no_empty(&doc, "");
        no_empty(&catalog(&f.catalog), "");
        let ar = &doc["assessment-results"];
        let obs = ar["results"][0]["observations"].as_array().unwrap();
        let res = ar["back-matter"]["resources"].as_array().unwrap();
        assert_eq!(obs.len(), f.records.len());
        assert_eq!(res.len(), f.records.len() + 3);
        let href = ar["import-ap"]["href"].as_str().unwrap();
        assert!(
            res.iter()
                .any(|r| format!("#{}", r["uuid"].as_str().unwrap()) == href)
        );
        // A different scope gives a different document UUID.
        let fewer = Fixture {
            records: f.records[..3].to_vec(),
            ..fixture()
        };
        assert_ne!(run(&fewer, true)["assessment-results"]["uuid"], ar["uuid"]);
        // And blobs only change the rlinks.
        assert_ne!(serde_json::to_vec(&run(&f, false)).unwrap(), a);
    }

    #[test]
    fn uuids_are_v5_and_stable() {
        let u = uuid_for("system:fraud");
        assert_eq!(u.get_version_num(), 5);
        assert_eq!(u, uuid_for("system:fraud"));
        assert_ne!(u, uuid_for("system:churn"));
    }

    #[test]
    fn observations_follow_the_records() {
        let f = fixture();
        let doc = run(&f, false);
        let result = &doc["assessment-results"]["results"][0];
        let obs = result["observations"].as_array().unwrap();
        // Artifact-dated validation report: expires 90 days after its artifact date.
        assert_eq!(obs[0]["collected"], "2026-10-01T08:00:00.000Z");
        let k = f.catalog.kind("validation_report").unwrap();
        let exp = ts("2026-09-30T12:00:00Z")
            .checked_add_days(k.freshness_days)
            .unwrap();
        assert_eq!(obs[0]["expires"], exp.to_string());
        // Gone record: no expiry, an `event` prop on its evidence.
        assert!(obs[4].get("expires").is_none());
        assert!(
            obs[4]["relevant-evidence"][0]["props"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "event" && p["value"] == "gone")
        );
        assert_eq!(result["start"], "2026-10-01T08:00:00.000Z");
        assert_eq!(result["end"], "2026-11-22T00:00:00.000Z");
        // The locator with a space is a valid href.
        let res = doc["assessment-results"]["back-matter"]["resources"]
            .as_array()
            .unwrap();
        assert!(res.iter().any(
            |r| r["rlinks"][0]["href"] == "git+https://git.example/ml.git#churn/data%20card.md"
        ));
        // The drifted finding carries its kind and since, and its message without the newline.
        let findings = result["findings"].as_array().unwrap();
        let a82 = findings
            .iter()
            .find(|x| x["target"]["target-id"] == "a.8.2_smt")
            .unwrap();
        assert_eq!(a82["target"]["status"]["state"], "not-satisfied");
        assert_eq!(a82["target"]["status"]["reason"], "fail");
        let props = a82["props"].as_array().unwrap();
        assert!(
            props
                .iter()
                .any(|p| p["name"] == "drift" && p["value"] == "changed")
        );
        assert!(
            props
                .iter()
                .any(|p| p["name"] == "since" && p["value"] == "2026-11-20T10:00:00.000Z")
        );
        assert_eq!(a82["related-observations"].as_array().unwrap().len(), 2);
        // Not applicable everywhere → excluded, never a finding.
        let sel = &result["reviewed-controls"]["control-selections"][0];
        let excluded = sel["exclude-controls"].as_array().unwrap();
        assert!(excluded.iter().any(|c| c["control-id"] == "a.6.1.2"));
        assert!(
            !findings
                .iter()
                .any(|x| x["target"]["target-id"] == "a.6.1.2_smt")
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(token("1abc"), "_1abc");
        assert_eq!(token("a b:c"), "a_b_c");
        assert_eq!(string("  a\nb \u{2028} "), "a b");
        assert_eq!(string(" \n"), "-");
        assert_eq!(uri_ref("s3://b/k%zz#x#y"), "s3://b/k%25zz#x%23y");
        assert_eq!(uri_ref("s3://b/%41"), "s3://b/%41");
        assert_eq!(catalog_date("2026.11.1"), "2026-11-01T00:00:00Z");
        assert_eq!(sort_id("A.6.2.4"), "a.06.02.04");
        assert_eq!(code("a`b"), "``a`b``");
    }
}
