//! Request and response bodies with a size limit that is enforced as bytes flow, so neither a
//! caller nor a guest can push more than its package allows, and the host knows it happened.

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// Which way the body flows (decides the error the guest or client sees).
#[derive(Debug, Clone, Copy)]
pub enum Direction {
    /// From the caller to the guest.
    Request,
    /// From the guest to the caller.
    Response,
}

/// A body that fails once more than `limit` bytes have passed, and flags it.
pub struct CappedBody<B> {
    inner: B,
    seen: u64,
    limit: u64,
    direction: Direction,
    over: Arc<AtomicBool>,
}

impl<B> CappedBody<B> {
    /// Caps `inner` at `limit` bytes; `over` is set when the cap is hit.
    pub fn new(inner: B, limit: u64, direction: Direction, over: Arc<AtomicBool>) -> Self {
        CappedBody {
            inner,
            seen: 0,
            limit,
            direction,
            over,
        }
    }
}

impl<B> Body for CappedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<wasmtime_wasi_http::Error>,
{
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.seen > self.limit {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            self.seen += data.len() as u64;
            if self.seen > self.limit {
                self.over.store(true, Ordering::Relaxed);
                let limit = Some(self.limit);
                return Poll::Ready(Some(Err(match self.direction {
                    Direction::Request => wasmtime_wasi_http::Error::HttpRequestBodySize(limit),
                    Direction::Response => wasmtime_wasi_http::Error::HttpResponseBodySize(limit),
                })));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Hands `body` to the guest through a channel, and once the guest stops reading (or never
/// starts), reads the rest itself, up to `drain_limit` bytes and `drain_time`, and drops it.
/// The caller then gets the guest's answer instead of a connection closed under its upload.
pub fn detached<B>(
    body: B,
    drain_limit: u64,
    drain_time: std::time::Duration,
) -> http_body_util::combinators::UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<wasmtime_wasi_http::Error> + Send,
{
    use http_body_util::BodyExt;
    if body.is_end_stream() {
        return body.map_err(Into::into).boxed_unsync();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, wasmtime_wasi_http::Error>>(4);
    tokio::spawn(async move {
        let mut body = body;
        let mut drained = 0u64;
        let mut guest_gone = false;
        let pump = async {
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(frame) => {
                        if guest_gone {
                            drained += frame.data_ref().map_or(0, |d| d.len() as u64);
                            if drained > drain_limit {
                                break;
                            }
                        } else if tx.send(Ok(frame)).await.is_err() {
                            guest_gone = true;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        break;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(drain_time, pump).await;
    });
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    http_body_util::StreamBody::new(frames).boxed_unsync()
}
