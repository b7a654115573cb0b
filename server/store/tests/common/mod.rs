//! Shared harness of the store tests: backends (a temp SQLite file; a fresh PostgreSQL database
//! per test), records and signers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aims_ledger::merkle::Hash;
use aims_model::Timestamp;
use aims_model::{ContentHash, EvidenceRecord, RECORD_VERSION, RecordEvent, SourceRef, SourceType};
use aims_store::{CheckpointSigner, PgStore, SqliteStore, Store};
use sqlx::{Connection, PgConnection};

/// The server a PostgreSQL test uses (trust auth), overridable with `AIMS_TEST_POSTGRES`.
pub const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A store under test and whatever keeps its backing storage alive (dropped after the store).
pub struct TestDb<S> {
    pub store: S,
    _keep: Keep,
}

enum Keep {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Pg(PgDatabase),
}

impl<S: Store> TestDb<S> {
    pub fn store(&self) -> &dyn Store {
        &self.store
    }
}

/// A SQLite store on a fresh temp file.
pub async fn sqlite() -> TestDb<SqliteStore> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aims.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    TestDb {
        store,
        _keep: Keep::Dir(dir),
    }
}

/// A PostgreSQL store on a fresh database.
pub async fn postgres() -> TestDb<PgStore> {
    let db = PgDatabase::create().await;
    let store = PgStore::open(&db.url).await.unwrap();
    TestDb {
        store,
        _keep: Keep::Pg(db),
    }
}

/// A database with a random name, dropped (from a blocking thread, so also when the test
/// panics) when this is dropped.
pub struct PgDatabase {
    admin: String,
    pub name: String,
    pub url: String,
}

fn admin_url() -> String {
    std::env::var("AIMS_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_PG.to_owned())
}

async fn admin_connect(admin: &str) -> PgConnection {
    match PgConnection::connect(admin).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is unreachable at {admin} ({e}). These tests need a real server: start it with \
             `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` (scripts/test.sh \
             does this), or point AIMS_TEST_POSTGRES at one (trust auth, a role that may CREATE DATABASE)"
        ),
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    format!("{}/{name}{query}", &base[..authority_end])
}

fn random_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let seed = format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let h = ContentHash::of(seed.as_bytes());
    format!("aims_test_{}", &h.as_str()[..16])
}

impl PgDatabase {
    pub async fn create() -> Self {
        let admin = admin_url();
        let mut conn = admin_connect(&admin).await;
        let name = random_name();
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name} at {admin}: {e}"));
        conn.close().await.ok();
        let url = with_database(&admin, &name);
        Self { admin, name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // A runtime of its own on a thread of its own: works from inside any test runtime,
        // including while unwinding from a failed assertion.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// Signs with a fixed origin and no key: the note names size and root, which tests check.
pub struct TestSigner;

impl CheckpointSigner for TestSigner {
    fn sign(&self, size: u64, root: &[u8; 32]) -> Result<String, String> {
        Ok(format!("aims.test/log\n{size}\n{}\n", hex::encode(root)))
    }
}

/// Always fails.
pub struct FailingSigner;

impl CheckpointSigner for FailingSigner {
    fn sign(&self, _size: u64, _root: &[u8; 32]) -> Result<String, String> {
        Err("the key is unavailable".to_owned())
    }
}

pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix_secs(1_750_000_000 + secs).unwrap()
}

/// An observed record of `system` for the artifact `locator` (source `src`) with `content`.
pub fn record(system: &str, locator: &str, content: &str, observed: i64) -> EvidenceRecord {
    EvidenceRecord {
        v: RECORD_VERSION,
        agent: "agent-1".to_owned(),
        source: SourceRef {
            id: "src".to_owned(),
            source_type: SourceType::Dir,
        },
        locator: locator.to_owned(),
        version: ContentHash::of(content.as_bytes()).as_str()[..12].to_owned(),
        sha256: ContentHash::of(content.as_bytes()),
        size: content.len() as u64,
        observed_at: at(observed),
        system: system.to_owned(),
        kind: "model_card".to_owned(),
        metadata: serde_json::Map::new(),
        event: RecordEvent::Observed,
        artifact_time: None,
    }
}

/// The same artifact reported gone.
pub fn gone(r: &EvidenceRecord, observed: i64) -> EvidenceRecord {
    EvidenceRecord {
        event: RecordEvent::Gone,
        observed_at: at(observed),
        ..r.clone()
    }
}

/// Leaf hashes of every stored entry, read back from the store (so from the stored bytes).
pub async fn stored_leaves(store: &dyn Store) -> Vec<Hash> {
    let size = store.tree_size().await.unwrap();
    let rows = store.entries(0, size + 10).await.unwrap();
    assert_eq!(
        rows.len() as u64,
        size,
        "entries() returns the whole ledger"
    );
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            assert_eq!(r.index, i as u64, "leaf indices are dense");
            aims_ledger::merkle::leaf_hash(&r.entry)
        })
        .collect()
}
