//! `hash`: SHA-256 of a big random file through the agent's streaming path (the real engine
//! polling a `dir` source), against `openssl dgst -sha256`; then two files on two cores.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use aims_catalog::Catalog;
use aims_collect::{Cursor, DirCollector, DirSource, PollContext, SystemRule, poll};
use aims_model::Timestamp;

use crate::Ctx;
use crate::report::Row;
use crate::util::{Rng, best_of, fmt_bw, have, sh_output, time_sh};

const SUITE: &str = "hash";
/// The file inside each big-file directory.
pub const FILE: &str = "big.bin";
/// Timed repetitions per measurement (the best is kept).
const REPS: usize = 2;

/// Writes `count` directories holding one random file of `bytes` each (fsynced), once.
pub fn ensure_files(ctx: &mut Ctx, count: usize) -> Result<()> {
    let bytes = ctx.scale.hash_bytes;
    while ctx.big_files.len() < count {
        let n = ctx.big_files.len();
        let dir = ctx.tmp.path().join(format!("big-{n}"));
        std::fs::create_dir_all(&dir)?;
        eprintln!(
            "    writing {} MiB of random data to {}",
            bytes >> 20,
            dir.display()
        );
        let mut f = std::fs::File::create(dir.join(FILE))?;
        let mut rng = Rng::new(0xB16F_11E0 + n as u64);
        let mut buf = vec![0u8; 8 << 20];
        let mut left = bytes;
        while left > 0 {
            let k = usize::try_from(left.min(buf.len() as u64))?;
            rng.fill(&mut buf[..k]);
            f.write_all(&buf[..k])?;
            left -= k as u64;
        }
        f.sync_all()?;
        ctx.big_files.push(dir);
    }
    Ok(())
}

/// Removes the big files (called when no later suite needs them).
pub fn remove_files(ctx: &mut Ctx) {
    for d in ctx.big_files.drain(..) {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// One poll of a `dir` source holding only the big file, with an empty cursor: returns the
/// record's hex SHA-256 and the bytes the engine hashed.
async fn engine_hash(dir: PathBuf, catalog: Arc<Catalog>) -> Result<(String, u64)> {
    let collector = DirCollector::new(&DirSource {
        id: "big".into(),
        path: dir,
        system: Some("bench".into()),
        system_from_path: None,
        interval_secs: 60,
        include: Vec::new(),
        exclude: Vec::new(),
        follow_symlinks: false,
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let rule = SystemRule::Fixed("bench".into());
    let pctx = PollContext {
        agent_id: "bench-agent",
        catalog: &catalog,
        system_rule: &rule,
        now: Timestamp::now(),
        max_parse_bytes: aims_collect::DEFAULT_MAX_PARSE_BYTES,
    };
    let out = poll(&collector, &Cursor::default(), &pctx)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if out.stats.fetched != 1 || out.records.len() != 1 || !out.stats.errors.is_empty() {
        bail!("unexpected poll outcome: {:?}", out.stats);
    }
    let r = &out.records[0];
    Ok((r.sha256.as_str().to_owned(), out.stats.bytes_hashed))
}

/// The same 64 KiB read-and-hash loop as the engine, synchronous std IO, no tokio.
fn chunk_loop(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn openssl(path: &Path) -> Result<(Duration, String)> {
    let t = Instant::now();
    let out = sh_output(
        Path::new("/"),
        &format!("openssl dgst -sha256 -r '{}'", path.display()),
    )?;
    let took = t.elapsed();
    let hex = out
        .split_whitespace()
        .next()
        .context("no openssl output")?
        .to_owned();
    Ok((took, hex))
}

pub fn run(ctx: &mut Ctx) -> Result<Vec<Row>> {
    if !have("openssl") {
        bail!("openssl is not installed: no reference");
    }
    ensure_files(ctx, 2)?;
    let bytes = ctx.scale.hash_bytes;
    let d0 = ctx.big_files[0].clone();
    let d1 = ctx.big_files[1].clone();
    let f0 = d0.join(FILE);
    let f1 = d1.join(FILE);
    let catalog = Arc::new(Catalog::embedded()?);

    // Read both once so every measurement starts from the page cache.
    time_sh(
        Path::new("/"),
        &format!("cat '{}' '{}' > /dev/null", f0.display(), f1.display()),
    )?;

    let (ref_one, ref_hex) = best_of(REPS, || openssl(&f0))?;
    let (ours_one, (our_hex, hashed)) = best_of(REPS, || {
        let t = Instant::now();
        let r = ctx.rt.block_on(engine_hash(d0.clone(), catalog.clone()))?;
        Ok((t.elapsed(), r))
    })?;
    if our_hex != ref_hex || hashed != bytes {
        bail!("engine hash {our_hex} ({hashed} bytes) differs from openssl {ref_hex}");
    }
    let (loop_one, loop_hex) = best_of(REPS, || {
        let t = Instant::now();
        let h = chunk_loop(&f0)?;
        Ok((t.elapsed(), h))
    })?;
    if loop_hex != ref_hex {
        bail!("chunk loop hash differs from openssl");
    }

    // Two files at once: two tasks on the two-worker runtime, like two sources of one agent.
    let (ours_two, _) = best_of(REPS, || {
        let t = Instant::now();
        ctx.rt.block_on(async {
            let a = tokio::spawn(engine_hash(d0.clone(), catalog.clone()));
            let b = tokio::spawn(engine_hash(d1.clone(), catalog.clone()));
            a.await??;
            b.await??;
            Ok::<_, anyhow::Error>(())
        })?;
        Ok((t.elapsed(), ()))
    })?;
    let (ref_two, _) = best_of(REPS, || {
        let took = time_sh(
            Path::new("/"),
            &format!(
                "openssl dgst -sha256 '{}' > /dev/null & openssl dgst -sha256 '{}' > /dev/null & wait",
                f0.display(),
                f1.display()
            ),
        )?;
        Ok((took, ()))
    })?;

    let bw = |b: u64, d: Duration| b as f64 / d.as_secs_f64();
    let ours1 = bw(bytes, ours_one);
    let ours2 = bw(2 * bytes, ours_two);
    let size = format!("{} MiB", bytes >> 20);
    Ok(vec![
        Row::new(
            SUITE,
            format!("SHA-256 of one {size} file: engine `poll` of a `dir` source (64 KiB reads, 1 MiB tokio::fs buffer)"),
            fmt_bw(bytes, ours_one),
        )
        .reference(
            format!("{} (`openssl dgst -sha256`)", fmt_bw(bytes, ref_one)),
            Some(ref_one.as_secs_f64() / ours_one.as_secs_f64()),
        )
        .goal(
            "≥ 0.9× openssl",
            ref_one.as_secs_f64() / ours_one.as_secs_f64() >= 0.9,
        ),
        Row::new(
            SUITE,
            format!("SHA-256 of one {size} file: same 64 KiB loop with sha2, blocking std::fs (diagnostic)"),
            fmt_bw(bytes, loop_one),
        )
        .reference(
            format!("{} (`openssl dgst -sha256`)", fmt_bw(bytes, ref_one)),
            Some(ref_one.as_secs_f64() / loop_one.as_secs_f64()),
        ),
        Row::new(
            SUITE,
            format!("two {size} files concurrently: two engine polls as two tokio tasks, aggregate"),
            format!("{} ({:.2}× one file)", fmt_bw(2 * bytes, ours_two), ours2 / ours1),
        )
        .reference(
            format!("{} (two `openssl dgst` processes at once)", fmt_bw(2 * bytes, ref_two)),
            Some(ref_two.as_secs_f64() / ours_two.as_secs_f64()),
        )
        .goal("≥ 1.7× one file's throughput", ours2 >= 1.7 * ours1),
    ])
}
