//! The OpenAPI document served at /v1/openapi.json is valid JSON, OpenAPI 3, and describes every
//! v1 route the router serves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[test]
fn openapi_lists_the_v1_routes() {
    let doc: serde_json::Value = serde_json::from_str(aims_server::OPENAPI).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let src = include_str!("../src/lib.rs");
    for line in src
        .lines()
        .filter(|l| l.trim_start().starts_with(".route(\"/"))
    {
        let path = line.split('"').nth(1).unwrap();
        if path.starts_with("/v1/") || ["/metrics", "/healthz", "/readyz"].contains(&path) {
            assert!(
                doc["paths"].get(path).is_some(),
                "{path} is served but not described"
            );
        }
    }
}
