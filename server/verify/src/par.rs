//! Data parallelism for the checks, on scoped std threads (no runtime, no dependency).
//!
//! [`map`] is `items.iter().map(f).collect()` computed on every core: the items are cut into
//! chunks, and each thread (the caller's included) takes the next chunk from a shared counter
//! until none is left, so uneven chunks (a long entry, a system with more records) balance out.
//! The results come back in input order, whatever the order the chunks finished in, so a check
//! that reports "the first bad line" reports the same line as a sequential loop would.
//!
//! Failure behaviour: `f` must not panic (the checks return their failures as values); if it
//! does, the panic is resumed on the caller's thread once every thread has stopped, as it would
//! have surfaced in a sequential loop. Nothing is shared between threads but the input slice, the
//! closure and the chunk counter.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Threads used at most (more would only add start-up cost on the machines this runs on).
pub const MAX_THREADS: usize = 16;

/// The threads [`map`] uses: the machine's available parallelism, at most [`MAX_THREADS`].
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_THREADS)
}

/// `items.iter().map(f).collect()`, on [`threads`] threads in chunks of `chunk` items.
pub fn map<T, R, F>(items: &[T], chunk: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    map_on(threads(), items, chunk, f)
}

/// [`map`] on at most `threads` threads (1 or 0: on the caller's thread only, no thread started).
pub fn map_on<T, R, F>(threads: usize, items: &[T], chunk: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let chunk = chunk.max(1);
    let chunks = items.len().div_ceil(chunk);
    let threads = threads.min(chunks);
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    // Each thread returns the chunks it did, numbered, to be put back in order.
    let work = || {
        let mut done: Vec<(usize, Vec<R>)> = Vec::new();
        loop {
            let c = next.fetch_add(1, Ordering::Relaxed);
            if c >= chunks {
                return done;
            }
            let lo = c * chunk;
            let hi = (lo + chunk).min(items.len());
            done.push((c, items[lo..hi].iter().map(&f).collect()));
        }
    };
    let mut parts = std::thread::scope(|s| {
        let others: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut parts = work();
        for h in others {
            match h.join() {
                Ok(p) => parts.extend(p),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        parts
    });
    parts.sort_unstable_by_key(|(c, _)| *c);
    let mut out = Vec::with_capacity(items.len());
    for (_, p) in parts {
        out.extend(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: &u64) -> (u64, String) {
        (x.wrapping_mul(0x9E37_79B9_7F4A_7C15), format!("{x}"))
    }

    /// The same result as the sequential map for every size, chunk and thread count, including
    /// the empty input, one item, more threads than items and chunks that do not divide the input.
    #[test]
    fn same_result_as_sequential() {
        for n in [0usize, 1, 2, 3, 7, 64, 1_001, 100_003] {
            let items: Vec<u64> = (0..n as u64).map(|i| i * 31 + 7).collect();
            let want: Vec<(u64, String)> = items.iter().map(f).collect();
            for threads in [0, 1, 2, 3, 8] {
                for chunk in [0, 1, 2, 5, 1024, 1 << 20] {
                    assert_eq!(
                        map_on(threads, &items, chunk, f),
                        want,
                        "n {n} threads {threads} chunk {chunk}"
                    );
                }
            }
            assert_eq!(map(&items, 100, f), want);
        }
    }

    /// Uneven work still ends in input order.
    #[test]
    fn uneven_chunks_keep_order() {
        let items: Vec<u64> = (0..200).collect();
        let out = map_on(4, &items, 3, |x| {
            if x % 17 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            *x
        });
        assert_eq!(out, items);
    }

    #[test]
    #[should_panic(expected = "boom 5")]
    fn a_panic_reaches_the_caller() {
        let items: Vec<u64> = (0..10).collect();
        map_on(2, &items, 1, |x| {
            if *x == 5 {
                std::panic::panic_any(format!("boom {x}"));
            }
            *x
        });
    }
}
