//! `ledger-append`: records through `Store::ingest` (SQLite, real LogKeys signer) in batches of
//! 500, against a raw bulk insert of the same rows in one transaction.

use aims_store::LedgerStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use aims_model::{
    ContentHash, EvidenceRecord, RECORD_VERSION, RecordEvent, SourceRef, SourceType, Timestamp,
};
use aims_server::keys::LogKeys;
use aims_store::{SqliteStore, Store};

use crate::Ctx;
use crate::report::Row;
use crate::util::{fmt_dur, fmt_rate, group, have, sh_output, time_sh};

const SUITE: &str = "ledger-append";
/// Records per `Store::ingest` call (the agent's default batch size).
pub const BATCH: usize = 500;
/// The server's default origin (so `aims-server serve` can reopen the same keys).
pub const ORIGIN: &str = "aims-evidence.local/ledger";
/// The principal the records are ingested as.
const AGENT: &str = "bench-agent";

/// The SQLite ledger built by this suite and reused by `proof-gen`, `verify` and `rss`.
pub struct Ledger {
    /// Directory holding `aims.db` and `aims-keys/` (the server's default layout).
    pub dir: PathBuf,
    /// `sqlite://…/aims.db`.
    pub url: String,
    /// The store.
    pub store: Arc<SqliteStore>,
    /// The keys that signed its checkpoints.
    pub keys: Arc<LogKeys>,
    /// Entries in the ledger.
    pub size: u64,
}

impl Ledger {
    /// Closes the store's pools.
    pub async fn close(self) {
        self.store.close().await;
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join("aims.db")
    }
}

/// `n` distinct, valid records: 20 systems, each locator seen twice (the second version links to
/// the first through `prev`), metadata like a parsed JSON report.
pub fn records(n: u64) -> Result<Vec<EvidenceRecord>> {
    records_in(n, 20)
}

/// Like [`records`], spread over `systems` AI systems.
pub fn records_in(n: u64, systems: u64) -> Result<Vec<EvidenceRecord>> {
    let base = Timestamp::parse_utc("2026-11-01T00:00:00Z").map_err(|e| anyhow::anyhow!("{e}"))?;
    let half = (n / 2).max(1);
    let kinds = [
        "validation_report",
        "model_card",
        "dataset_card",
        "unclassified",
    ];
    (0..n)
        .map(|i| {
            let l = i % half;
            let system = format!("sys-{:04}", l % systems.max(1));
            let path = format!("systems/{system}/reports/report-{l:07}.json");
            let mut metadata = Map::new();
            metadata.insert("path".into(), Value::String(path.clone()));
            metadata.insert("format".into(), Value::String("json".into()));
            metadata.insert(
                "model".into(),
                serde_json::json!({"name": format!("model-{}", l % 97), "version": (i / half + 1).to_string()}),
            );
            let observed = Timestamp::from_unix_millis(base.unix_millis() + i as i64 * 1000)
                .context("timestamp out of range")?;
            let r = EvidenceRecord {
                v: RECORD_VERSION,
                agent: AGENT.to_owned(),
                source: SourceRef {
                    id: "pipeline".to_owned(),
                    source_type: SourceType::Git,
                },
                locator: format!("git+file:///srv/pipeline#{path}"),
                version: ContentHash::of(&i.to_be_bytes()).as_str()[..40].to_owned(),
                sha256: ContentHash::of(format!("content {i}").as_bytes()),
                size: 1000 + i % 50_000,
                observed_at: observed,
                system,
                kind: kinds[(l % 4) as usize].to_owned(),
                metadata,
                event: RecordEvent::Observed,
                artifact_time: Some(observed),
            };
            r.validate().map_err(|e| anyhow::anyhow!("record {i}: {e}"))?;
            Ok(r)
        })
        .collect()
}

/// Opens a fresh store and keys in `dir` (the server's layout: `aims.db`, `aims-keys/`).
pub async fn open(dir: &Path) -> Result<(String, Arc<SqliteStore>, Arc<LogKeys>)> {
    std::fs::create_dir_all(dir)?;
    let url = format!("sqlite://{}", dir.join("aims.db").display());
    let store = SqliteStore::open(&url)
        .await
        .with_context(|| format!("opening {url}"))?;
    let keys = LogKeys::load_or_create(&dir.join("aims-keys"), ORIGIN)?;
    Ok((url, Arc::new(store), Arc::new(keys)))
}

/// Appends `records` in batches of [`BATCH`]; returns each batch's time.
pub async fn append(
    store: &dyn Store,
    keys: &LogKeys,
    records: &[EvidenceRecord],
) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(records.len() / BATCH + 1);
    for batch in records.chunks(BATCH) {
        let t = Instant::now();
        let out = store.ingest(AGENT, batch, Timestamp::now(), keys).await?;
        times.push(t.elapsed());
        if out.results.iter().any(|(_, _, dup)| *dup) {
            bail!("a benchmark record was taken for a duplicate");
        }
    }
    Ok(times)
}

/// Builds the ledger (timed by the suite, untimed when another suite needs it first).
pub fn build(ctx: &mut Ctx) -> Result<(Vec<Duration>, Duration)> {
    let n = ctx.scale.ledger_records;
    let recs = records(n)?;
    let dir = ctx.tmp.path().join("ledger");
    let (url, store, keys) = ctx.rt.block_on(open(&dir))?;
    let started = Instant::now();
    let times = ctx.rt.block_on(append(store.as_ref(), &keys, &recs))?;
    let total = started.elapsed();
    let size = ctx.rt.block_on(store.tree_size())?;
    if size != n {
        bail!("ledger holds {size} entries, expected {n}");
    }
    ctx.ledger = Some(Ledger {
        dir,
        url,
        store,
        keys,
        size,
    });
    Ok((times, total))
}

/// The ledger, built untimed if `ledger-append` did not run.
pub fn ensure(ctx: &mut Ctx) -> Result<()> {
    if ctx.ledger.is_none() {
        eprintln!(
            "    (building the {}-record ledger first, untimed)",
            ctx.scale.ledger_records
        );
        build(ctx)?;
    }
    Ok(())
}

pub fn run(ctx: &mut Ctx) -> Result<Vec<Row>> {
    if ctx.ledger.is_some() {
        bail!("the ledger was already built");
    }
    let n = ctx.scale.ledger_records;
    let (mut times, total) = build(ctx)?;
    let ours = n as f64 / total.as_secs_f64();
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    let worst = times.last().copied().unwrap_or_default();
    let ledger = ctx.ledger.as_ref().context("ledger missing")?;

    let (ref_time, how) = reference(ctx, ledger)?;
    let reference = n as f64 / ref_time.as_secs_f64();
    let goal = 20_000.0;
    Ok(vec![
        Row::new(
            SUITE,
            format!(
                "append {} records, {} × `Store::ingest` of {BATCH} (SQLite WAL, synchronous=FULL, Ed25519 log + clock signatures)",
                group(n),
                times.len()
            ),
            format!("{} ({})", fmt_rate(ours, "records"), fmt_dur(total)),
        )
        .reference(
            format!(
                "{} ({}; {how})",
                fmt_rate(reference, "records"),
                fmt_dur(ref_time)
            ),
            Some(ours / reference),
        )
        .goal("≥ 20,000 records/s (issue 5)", ours >= goal),
        Row::new(
            SUITE,
            format!("latency of one {BATCH}-record ingest (median / worst)"),
            format!("{} / {}", fmt_dur(median), fmt_dur(worst)),
        ),
    ])
}

/// The reference: the rows the ledger ended up with (entries, subtree hashes, checkpoints)
/// inserted in one transaction into an empty database with the same schema and pragmas.
fn reference(ctx: &Ctx, ledger: &Ledger) -> Result<(Duration, String)> {
    let dir = ctx.tmp.path().join("ledger-ref");
    std::fs::create_dir_all(&dir)?;
    let src = ledger.db_path();
    if have("sqlite3") {
        let src_s = src.display().to_string();
        let mut sql = String::from("PRAGMA journal_mode=WAL;\nPRAGMA synchronous=FULL;\n");
        for t in ["ledger_entries", "ledger_hashes", "ledger_checkpoints"] {
            sql.push_str(&sh_output(
                &dir,
                &format!("sqlite3 '{src_s}' '.schema {t}'"),
            )?);
            sql.push('\n');
        }
        sql.push_str("BEGIN;\n");
        let sql_path = dir.join("bulk.sql");
        std::fs::write(&sql_path, sql)?;
        for (t, order) in [
            ("ledger_entries", "idx"),
            ("ledger_hashes", "level, idx"),
            ("ledger_checkpoints", "size"),
        ] {
            time_sh(
                &dir,
                &format!(
                    "sqlite3 '{src_s}' '.mode insert {t}' 'SELECT * FROM {t} ORDER BY {order}' >> bulk.sql"
                ),
            )?;
        }
        time_sh(&dir, "echo 'COMMIT;' >> bulk.sql")?;
        let took = time_sh(&dir, "sqlite3 ref.db < bulk.sql")?;
        let count = sh_output(&dir, "sqlite3 ref.db 'SELECT COUNT(*) FROM ledger_entries'")?;
        if count.trim().parse::<u64>().ok() != Some(ledger.size) {
            bail!("reference database holds {} entries", count.trim());
        }
        Ok((
            took,
            "`sqlite3 ref.db < bulk.sql`: the same entry, subtree-hash and checkpoint rows as INSERTs in one BEGIN/COMMIT, same schema, WAL + synchronous=FULL"
                .to_owned(),
        ))
    } else {
        let took = ctx.rt.block_on(sqlx_reference(&src, &dir.join("ref.db")))?;
        Ok((
            took,
            "sqlx: plain INSERT loop of the same entry, subtree-hash and checkpoint rows in one transaction (sqlite3 CLI not installed)"
                .to_owned(),
        ))
    }
}

/// The reference without the sqlite3 CLI: a plain sqlx INSERT loop in one transaction.
async fn sqlx_reference(src: &Path, dst: &Path) -> Result<Duration> {
    use sqlx::Row as _;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::{ConnectOptions, Connection};

    let mut s = SqliteConnectOptions::new()
        .filename(src)
        .read_only(true)
        .connect()
        .await?;
    let entries = sqlx::query("SELECT * FROM ledger_entries ORDER BY idx")
        .fetch_all(&mut s)
        .await?;
    let hashes = sqlx::query("SELECT level, idx, hash FROM ledger_hashes ORDER BY level, idx")
        .fetch_all(&mut s)
        .await?;
    let cps =
        sqlx::query("SELECT size, root, note, created_at FROM ledger_checkpoints ORDER BY size")
            .fetch_all(&mut s)
            .await?;
    let schema: Vec<String> = sqlx::query_scalar(
        "SELECT sql FROM sqlite_master WHERE tbl_name IN ('ledger_entries', 'ledger_hashes', 'ledger_checkpoints') AND sql IS NOT NULL",
    )
    .fetch_all(&mut s)
    .await?;
    s.close().await?;

    let started = Instant::now();
    let mut d = SqliteConnectOptions::new()
        .filename(dst)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await?;
    for stmt in &schema {
        // Schema text read back from the source database, not user input.
        sqlx::query(stmt.as_str()).execute(&mut d).await?;
    }
    let mut tx = d.begin().await?;
    for r in &entries {
        sqlx::query(
            "INSERT INTO ledger_entries (idx, record_id, leaf_hash, entry, agent, received_at, source_id, \
             locator, system, kind, event, sha256, observed_at, prev) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        )
        .bind(r.try_get::<i64, _>(0)?)
        .bind(r.try_get::<String, _>(1)?)
        .bind(r.try_get::<Vec<u8>, _>(2)?)
        .bind(r.try_get::<Vec<u8>, _>(3)?)
        .bind(r.try_get::<String, _>(4)?)
        .bind(r.try_get::<String, _>(5)?)
        .bind(r.try_get::<String, _>(6)?)
        .bind(r.try_get::<String, _>(7)?)
        .bind(r.try_get::<String, _>(8)?)
        .bind(r.try_get::<String, _>(9)?)
        .bind(r.try_get::<String, _>(10)?)
        .bind(r.try_get::<String, _>(11)?)
        .bind(r.try_get::<String, _>(12)?)
        .bind(r.try_get::<Option<i64>, _>(13)?)
        .execute(&mut *tx)
        .await?;
    }
    for r in &hashes {
        sqlx::query("INSERT INTO ledger_hashes (level, idx, hash) VALUES (?, ?, ?)")
            .bind(r.try_get::<i64, _>(0)?)
            .bind(r.try_get::<i64, _>(1)?)
            .bind(r.try_get::<Vec<u8>, _>(2)?)
            .execute(&mut *tx)
            .await?;
    }
    for r in &cps {
        sqlx::query(
            "INSERT INTO ledger_checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(r.try_get::<i64, _>(0)?)
        .bind(r.try_get::<Vec<u8>, _>(1)?)
        .bind(r.try_get::<String, _>(2)?)
        .bind(r.try_get::<String, _>(3)?)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    d.close().await?;
    Ok(started.elapsed())
}
