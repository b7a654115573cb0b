//! Every example configuration shipped in `deploy/` parses and validates with the real loader,
//! so what operators copy is what the agent accepts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;

use aims_agent::config::AgentConfig;

#[test]
fn deploy_examples_are_valid_agent_configs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("agent") {
            continue;
        }
        let cfg = AgentConfig::load_and_validate(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!cfg.sources.is_empty(), "{name} has no sources");
        n += 1;
    }
    assert!(n >= 5, "expected the agent examples, found {n}");
}
