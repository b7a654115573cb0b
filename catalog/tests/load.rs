//! Loading and validating catalog data, embedded and from a directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers outside #[test] functions

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use aims_catalog::{Catalog, CatalogError, DATA_FILES, Facts};

fn embedded_text(name: &str) -> String {
    let c = Catalog::embedded().unwrap();
    c.data_files()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.to_owned())
        .unwrap()
}

fn dir_with(name: &str, text: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(name), text).unwrap();
    d
}

fn load_err(dir: &Path) -> String {
    match Catalog::load_dir(dir) {
        Ok(_) => panic!("catalog in {} should have been rejected", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn embedded_catalog_has_the_38_controls() {
    let c = Catalog::embedded().unwrap();
    assert_eq!(c.controls().len(), 38);
    let ids: Vec<&str> = c.controls().iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, aims_catalog::annex::ANNEX_A_CONTROLS.to_vec());
    assert!(c.is_control("A.6.2.4"));
    assert!(!c.is_control("A.6.2.1"));
    assert_eq!(c.control("A.7.5").unwrap().title, "Data provenance");
    let dash: Vec<&str> = c
        .dashboard_controls()
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(dash.len(), 14);
    assert_eq!(dash.first(), Some(&"A.6.1.2"));
    assert_eq!(dash.last(), Some(&"A.7.6"));
    assert_eq!(c.requirements().len(), 14);
}

#[test]
fn loading_a_copy_of_the_embedded_files_gives_the_same_hash() {
    let c = Catalog::embedded().unwrap();
    let d = tempfile::tempdir().unwrap();
    for (name, text) in c.data_files() {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    let loaded = Catalog::load_dir(d.path()).unwrap();
    assert_eq!(loaded.hash(), c.hash());
    assert_eq!(loaded.version(), c.version());
    assert_eq!(DATA_FILES.len(), 5);
}

#[test]
fn partial_directory_overrides_one_file() {
    let kinds = embedded_text("kinds.yaml").replace("freshness_days: 90", "freshness_days: 30");
    let d = dir_with("kinds.yaml", &kinds);
    let c = Catalog::load_dir(d.path()).unwrap();
    assert_eq!(c.kind("validation_report").unwrap().freshness_days, 30);
    assert_ne!(c.hash(), Catalog::embedded().unwrap().hash());
}

#[test]
fn empty_or_missing_directory_is_rejected() {
    let d = tempfile::tempdir().unwrap();
    assert!(matches!(
        Catalog::load_dir(d.path()),
        Err(CatalogError::Io { .. })
    ));
    assert!(Catalog::load_dir(&d.path().join("nope")).is_err());
}

#[test]
fn bad_control_id_is_rejected_with_its_name() {
    let text = embedded_text("controls.yaml").replace("id: A.6.2.2\n", "id: A.6.2.1\n");
    let d = dir_with("controls.yaml", &text);
    let msg = load_err(d.path());
    assert!(msg.contains("controls.yaml"), "{msg}");
    assert!(msg.contains("A.6.2.1"), "{msg}");
}

#[test]
fn bad_control_in_a_kind_is_rejected() {
    let text = embedded_text("kinds.yaml").replace("controls: [A.6.2.4]", "controls: [A.6.10]");
    let msg = load_err(dir_with("kinds.yaml", &text).path());
    assert!(
        msg.contains("kinds.yaml") && msg.contains("validation_report") && msg.contains("A.6.10"),
        "{msg}"
    );
}

#[test]
fn rule_with_unknown_kind_is_rejected() {
    let msg = load_err(
        dir_with(
            "rules.yaml",
            "rules:\n  - { name: odd, kind: tea_leaves, paths: ['**/*.tea'] }\n",
        )
        .path(),
    );
    assert!(
        msg.contains("rules.yaml") && msg.contains("tea_leaves") && msg.contains("odd"),
        "{msg}"
    );
}

#[test]
fn rule_with_bad_glob_is_rejected() {
    let msg = load_err(
        dir_with(
            "rules.yaml",
            "rules:\n  - { kind: model_card, paths: ['a/[b'] }\n",
        )
        .path(),
    );
    assert!(msg.contains("rules.yaml") && msg.contains("a/[b"), "{msg}");
}

#[test]
fn requirement_with_unknown_control_is_rejected() {
    let text = "requirements:\n  - { control: A.7.9, requires: [dataset_card] }\n";
    let msg = load_err(dir_with("requirements.yaml", text).path());
    assert!(
        msg.contains("requirements.yaml") && msg.contains("A.7.9"),
        "{msg}"
    );
}

#[test]
fn requirement_with_unknown_kind_or_zero_window_is_rejected() {
    let msg = load_err(
        dir_with(
            "requirements.yaml",
            "requirements:\n  - { control: A.7.3, requires: [[dataset_card, horoscope]] }\n",
        )
        .path(),
    );
    assert!(msg.contains("horoscope"), "{msg}");
    let msg = load_err(
        dir_with(
            "requirements.yaml",
            "requirements:\n  - { control: A.7.3, requires: [dataset_card], freshness_days: 0 }\n",
        )
        .path(),
    );
    assert!(msg.contains("freshness_days"), "{msg}");
    let msg = load_err(
        dir_with(
            "requirements.yaml",
            "requirements: []\nchanged:\n  - { kind: dataset_card, covered_by: [validation_report], controls: [A.6.2.1] }\n",
        )
        .path(),
    );
    assert!(msg.contains("A.6.2.1"), "{msg}");
}

#[test]
fn duplicate_and_zero_freshness_kinds_are_rejected() {
    let text = embedded_text("kinds.yaml").replace("freshness_days: 90", "freshness_days: 0");
    let msg = load_err(dir_with("kinds.yaml", &text).path());
    assert!(
        msg.contains("validation_report") && msg.contains("freshness_days"),
        "{msg}"
    );
    let text = embedded_text("controls.yaml").replace("id: A.7.3\n", "id: A.7.2\n");
    let msg = load_err(dir_with("controls.yaml", &text).path());
    assert!(msg.contains("A.7.2") && msg.contains("duplicate"), "{msg}");
}

#[test]
fn classify_examples() {
    let c = Catalog::embedded().unwrap();
    let run = |path: &str, format: Option<&str>, keys: &[&str], fields: &[(&str, &str)]| {
        let keys: BTreeSet<String> = keys.iter().map(|s| s.to_string()).collect();
        let fields: BTreeMap<String, String> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c.classify(&Facts {
            path,
            format,
            keys: &keys,
            fields: &fields,
        })
        .map(str::to_owned)
    };
    assert_eq!(
        run(
            "datasets/applications/README.md",
            Some("hf_card"),
            &["dataset_info", "license"],
            &[]
        )
        .as_deref(),
        Some("dataset_card")
    );
    assert_eq!(
        run(
            "systems/fraud/README.md",
            Some("hf_card"),
            &["model-index", "license"],
            &[]
        )
        .as_deref(),
        Some("model_card")
    );
    assert_eq!(
        run(
            "reports/val.yaml",
            Some("yaml"),
            &["kind"],
            &[("kind", "validation_report")]
        )
        .as_deref(),
        Some("validation_report")
    );
    assert_eq!(
        run("dvc.lock", Some("dvc_lock"), &[], &[]).as_deref(),
        Some("lineage_record")
    );
    assert_eq!(
        run("pipeline/dvc.lock", None, &[], &[]).as_deref(),
        Some("lineage_record")
    );
    assert_eq!(
        run("notes/shopping-list.txt", Some("text"), &[], &[]).as_deref(),
        None
    );
}
