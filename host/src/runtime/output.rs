//! Captured stdout/stderr of one execution, capped, kept as one stream in write order.
//!
//! Both streams write into one buffer, each write remembered as a chunk of its stream, so that
//! masking can match the two as one stream (a value split between stdout and stderr is still
//! one value) and then give each stream back its own bytes.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Which of the two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout = 0,
    /// Standard error.
    Stderr = 1,
}

/// What an execution wrote, in order, up to the cap of each stream. Unmasked: `Debug` shows
/// sizes only.
#[derive(Default)]
pub struct Captured {
    /// Every byte kept, of both streams, in write order.
    pub bytes: Vec<u8>,
    /// `(stream, length)` of each run of `bytes`, in order.
    pub chunks: Vec<(Stream, usize)>,
    /// Bytes kept per stream.
    pub len: [usize; 2],
    /// Whether each stream was cut at the cap.
    pub cut: [bool; 2],
}

impl std::fmt::Debug for Captured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Captured")
            .field("len", &self.len)
            .field("cut", &self.cut)
            .finish_non_exhaustive()
    }
}

impl Captured {
    fn append(&mut self, stream: Stream, buf: &[u8], cap: usize) {
        let s = stream as usize;
        let room = cap.saturating_sub(self.len[s]);
        let n = room.min(buf.len());
        if n < buf.len() {
            self.cut[s] = true;
        }
        if n == 0 {
            return;
        }
        self.bytes.extend_from_slice(&buf[..n]);
        self.len[s] += n;
        match self.chunks.last_mut() {
            Some((last, len)) if *last == stream => *len += n,
            _ => self.chunks.push((stream, n)),
        }
    }

    /// One stream's bytes, unmasked (for tests and for executions that read no secret).
    pub fn stream(&self, stream: Stream) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len[stream as usize]);
        let mut at = 0;
        for &(s, len) in &self.chunks {
            if s == stream {
                out.extend_from_slice(&self.bytes[at..at + len]);
            }
            at += len;
        }
        out
    }
}

/// A capped in-memory sink for a guest's stdout or stderr. Writes past the cap are accepted
/// and dropped (the guest never fails for printing too much) and the cut is remembered.
#[derive(Debug, Clone)]
pub struct CapturedOutput {
    inner: Arc<Mutex<Captured>>,
    stream: Stream,
    cap: usize,
}

impl CapturedOutput {
    /// A stdout sink of its own that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> CapturedOutput {
        CapturedOutput::pair(cap).0
    }

    /// A stdout and a stderr sink sharing one buffer, each keeping at most `cap` bytes.
    pub fn pair(cap: usize) -> (CapturedOutput, CapturedOutput) {
        let inner: Arc<Mutex<Captured>> = Arc::default();
        (
            CapturedOutput {
                inner: inner.clone(),
                stream: Stream::Stdout,
                cap,
            },
            CapturedOutput {
                inner,
                stream: Stream::Stderr,
                cap,
            },
        )
    }

    /// What was captured on both streams. A poisoned buffer yields nothing, marked cut.
    pub fn take(&self) -> Captured {
        match self.inner.lock() {
            Ok(mut c) => std::mem::take(&mut *c),
            Err(_) => Captured {
                cut: [true, true],
                ..Captured::default()
            },
        }
    }

    fn append(&self, buf: &[u8]) {
        if let Ok(mut c) = self.inner.lock() {
            c.append(self.stream, buf, self.cap);
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
    fn cuts_each_stream_at_the_cap_and_keeps_write_order() {
        let (out, err) = CapturedOutput::pair(8);
        out.append(b"hello ");
        err.append(b"oops");
        out.append(b"world");
        err.append(b"!");
        let c = out.take();
        assert_eq!(c.bytes, b"hello oopswo!");
        assert_eq!(
            c.chunks,
            vec![
                (Stream::Stdout, 6),
                (Stream::Stderr, 4),
                (Stream::Stdout, 2),
                (Stream::Stderr, 1)
            ]
        );
        assert_eq!(c.stream(Stream::Stdout), b"hello wo");
        assert_eq!(c.stream(Stream::Stderr), b"oops!");
        assert_eq!(c.cut, [true, false]);
        // Taken once: the buffer is empty afterwards.
        assert!(err.take().bytes.is_empty());
    }
}
