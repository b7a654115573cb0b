//! The agent config loader: bytes as a YAML, TOML or JSON configuration file, through the same
//! `AgentConfig::from_str_with_env` that `AgentConfig::load` uses, then `validate()`.
//!
//! The first byte picks the format and whether the `AIMS_AGENT__*` environment overrides are
//! present; the rest is the file text (the loader reads files as UTF-8). Never panics; and for a
//! valid configuration every source's cursor and cache path is one plain file name under the
//! spool directory, whatever the source id says.
#![no_main]

use std::collections::HashMap;
use std::path::{Component, Path};

use aims_agent::config::{AgentConfig, ConfigFormat};
use libfuzzer_sys::fuzz_target;

fn assert_one_segment_under(path: &Path, dir: &Path) {
    let rest = path
        .strip_prefix(dir)
        .unwrap_or_else(|_| panic!("{} is not under {}", path.display(), dir.display()));
    let parts: Vec<Component<'_>> = rest.components().collect();
    assert!(
        matches!(parts.as_slice(), [Component::Normal(_)]),
        "{} is not one plain file name under {}",
        path.display(),
        dir.display()
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (format, file) = match selector % 3 {
        0 => (ConfigFormat::Yaml, "agent.yaml"),
        1 => (ConfigFormat::Toml, "agent.toml"),
        _ => (ConfigFormat::Json, "agent.json"),
    };
    let mut env = HashMap::new();
    if selector & 0x80 != 0 {
        env.insert(
            "AIMS_AGENT__SERVER__TOKEN".to_owned(),
            "from-env".to_owned(),
        );
        env.insert(
            "AIMS_AGENT__SERVER__URL".to_owned(),
            "https://aims.example".to_owned(),
        );
        env.insert("AIMS_AGENT__AGENT__ID".to_owned(), "fuzz-agent".to_owned());
    }
    let Ok(cfg) = AgentConfig::from_str_with_env(text, format, Path::new(file), &env) else {
        return;
    };
    assert_eq!(cfg.file, Path::new(file));
    if cfg.validate().is_err() {
        return;
    }
    for s in &cfg.sources {
        assert_one_segment_under(&cfg.cursor_path(s.id()), &cfg.spool_dir.join("cursors"));
        assert_one_segment_under(&cfg.cache_path(s.id()), &cfg.spool_dir.join("cache"));
    }
});
