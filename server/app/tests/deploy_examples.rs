//! The example server settings in `deploy/` load with the real loader.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;

#[test]
fn deploy_server_example_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples/server.yaml");
    let s = aims_server::Settings::load(Some(&path)).unwrap();
    assert_eq!(s.origin, "aims.example.com/ledger");
    assert_eq!(s.listen, "0.0.0.0:8080");
}
