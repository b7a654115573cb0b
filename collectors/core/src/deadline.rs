//! [`DeadlineReader`]: a total time limit on an artifact stream.
//!
//! HTTP clients bound the time to connect and to the first byte, and often the time between two
//! reads; none of that stops a body trickling one byte every few seconds (issue 18, A5). A
//! collector wraps its download streams in a `DeadlineReader`, and the read that comes after the
//! deadline fails with [`std::io::ErrorKind::TimedOut`] (an error of that artifact: the engine
//! keeps its old cursor entry and retries it next cycle).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};

/// An [`AsyncRead`] that fails once `limit` has passed since it was made.
#[derive(Debug)]
pub struct DeadlineReader<R> {
    inner: R,
    limit: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<R> DeadlineReader<R> {
    /// Wraps `inner`; the clock starts now.
    pub fn new(inner: R, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            sleep: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for DeadlineReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the download did not finish within {} s",
                    this.limit.as_secs_f64()
                ),
            )));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    #[tokio::test]
    async fn a_trickle_times_out() {
        let (mut tx, rx) = tokio::io::duplex(16);
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            loop {
                if tx.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let mut r = DeadlineReader::new(rx, Duration::from_millis(200));
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
        assert!(!out.is_empty());
        // A stream that ends in time is read whole.
        let mut r = DeadlineReader::new(&b"abc"[..], Duration::from_secs(5));
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, b"abc");
    }
}
