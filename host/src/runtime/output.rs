//! Captured stdout/stderr of one execution, capped.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// A capped in-memory sink for a guest's stdout or stderr. Writes past the cap are accepted
/// and dropped (the guest never fails for printing too much) and the cut is remembered.
#[derive(Debug, Clone)]
pub struct CapturedOutput {
    inner: Arc<Mutex<Captured>>,
    cap: usize,
}

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

impl CapturedOutput {
    /// A sink that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> CapturedOutput {
        CapturedOutput {
            inner: Arc::default(),
            cap,
        }
    }

    /// What was captured, and whether output was cut at the cap.
    pub fn take(&self) -> (Vec<u8>, bool) {
        match self.inner.lock() {
            Ok(mut c) => (std::mem::take(&mut c.bytes), c.truncated),
            Err(_) => (Vec::new(), true),
        }
    }

    fn append(&self, buf: &[u8]) {
        if let Ok(mut c) = self.inner.lock() {
            let room = self.cap.saturating_sub(c.bytes.len());
            let n = room.min(buf.len());
            c.bytes.extend_from_slice(&buf[..n]);
            if n < buf.len() {
                c.truncated = true;
            }
        }
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_the_cap_and_says_so() {
        let out = CapturedOutput::new(8);
        out.append(b"hello ");
        out.append(b"world");
        assert_eq!(out.take(), (b"hello wo".to_vec(), true));
    }
}
