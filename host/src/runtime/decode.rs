//! Content codings of responses to a package that declares credentials: undone before
//! redaction reads the body, so that a compressed echo of a value is redacted like a plain one
//! (docs/credentials.md). Such requests ask for `accept-encoding: identity`; an upstream that
//! compresses anyway is decoded here, one that uses a coding not known here is refused.

use futures::TryStreamExt as _;
use http_body::Frame;
use http_body_util::BodyExt as _;
use wasmtime_wasi_http::Error as ErrorCode;

/// A content coding the host can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` (and `x-gzip`).
    Gzip,
    /// `deflate`: the zlib format (RFC 9110 §8.4.1.2).
    Deflate,
    /// `br`.
    Brotli,
    /// `zstd`.
    Zstd,
}

/// The most codings one response may stack.
const MAX_LAYERS: usize = 4;

/// The codings a response's `content-encoding` lists, in the order they were applied
/// (`identity` left out); `Err` with the first one not known here (or too many).
pub fn codings(headers: &http::HeaderMap) -> Result<Vec<Coding>, String> {
    let mut out = Vec::new();
    for value in headers.get_all(http::header::CONTENT_ENCODING) {
        let text = value.to_str().map_err(|_| "(not text)".to_string())?;
        for token in text.split(',') {
            let token = token.trim().to_ascii_lowercase();
            let coding = match token.as_str() {
                "" | "identity" => continue,
                "gzip" | "x-gzip" => Coding::Gzip,
                "deflate" => Coding::Deflate,
                "br" => Coding::Brotli,
                "zstd" => Coding::Zstd,
                _ => return Err(token),
            };
            out.push(coding);
        }
    }
    if out.len() > MAX_LAYERS {
        return Err(format!("{} codings stacked", out.len()));
    }
    Ok(out)
}

type Reader = std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// `body` with `codings` undone, the last applied first. A body that does not decode ends
/// with `HttpResponseContentCoding`, never with the bytes as they came.
pub fn decode(
    body: wasmtime_wasi_http::WasiBody,
    codings: &[Coding],
) -> wasmtime_wasi_http::WasiBody {
    use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZlibDecoder, ZstdDecoder};
    let stream = http_body_util::BodyDataStream::new(body)
        .map_err(|e| std::io::Error::other(format!("{e:?}")));
    let mut reader: Reader = Box::pin(tokio_util::io::StreamReader::new(stream));
    for coding in codings.iter().rev() {
        let buffered = tokio::io::BufReader::new(reader);
        reader = match coding {
            Coding::Gzip => {
                let mut d = GzipDecoder::new(buffered);
                d.multiple_members(true);
                Box::pin(d)
            }
            Coding::Deflate => Box::pin(ZlibDecoder::new(buffered)),
            Coding::Brotli => Box::pin(BrotliDecoder::new(buffered)),
            Coding::Zstd => Box::pin(ZstdDecoder::new(buffered)),
        };
    }
    let frames = tokio_util::io::ReaderStream::new(reader)
        .map_ok(Frame::data)
        .map_err(|e| {
            tracing::debug!(error = %e, "a response did not decode");
            ErrorCode::HttpResponseContentCoding(Some(
                "the response did not decode in its declared content coding".into(),
            ))
        });
    http_body_util::StreamBody::new(frames).boxed_unsync()
}

/// `data` encoded in `codings`, in order (tests).
#[cfg(test)]
pub async fn encode_for_tests(data: &[u8], codings: &[Coding]) -> Vec<u8> {
    use async_compression::tokio::bufread::{BrotliEncoder, GzipEncoder, ZlibEncoder, ZstdEncoder};
    use tokio::io::AsyncReadExt as _;
    let mut bytes = data.to_vec();
    for coding in codings {
        let input = std::io::Cursor::new(std::mem::take(&mut bytes));
        let mut reader: Reader = match coding {
            Coding::Gzip => Box::pin(GzipEncoder::new(input)),
            Coding::Deflate => Box::pin(ZlibEncoder::new(input)),
            Coding::Brotli => Box::pin(BrotliEncoder::new(input)),
            Coding::Zstd => Box::pin(ZstdEncoder::new(input)),
        };
        reader.read_to_end(&mut bytes).await.unwrap_or_default();
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn codings_are_read_in_order_and_unknown_ones_refused() {
        let mut h = http::HeaderMap::new();
        assert_eq!(codings(&h), Ok(vec![]));
        h.append("content-encoding", "identity".parse().unwrap());
        assert_eq!(codings(&h), Ok(vec![]));
        h.append("content-encoding", "GZip, br".parse().unwrap());
        h.append("content-encoding", "zstd,deflate".parse().unwrap());
        assert_eq!(
            codings(&h),
            Ok(vec![
                Coding::Gzip,
                Coding::Brotli,
                Coding::Zstd,
                Coding::Deflate
            ])
        );
        h.append("content-encoding", "x-gzip".parse().unwrap());
        assert!(codings(&h).is_err(), "five layers");
        let mut h = http::HeaderMap::new();
        h.append("content-encoding", "compress".parse().unwrap());
        assert_eq!(codings(&h), Err("compress".into()));
    }

    #[tokio::test]
    async fn a_body_that_does_not_decode_ends_in_an_error_not_in_its_bytes() {
        let body = http_body_util::Full::new(Bytes::from_static(b"sk_live_not_gzip_at_all"))
            .map_err(|never| match never {})
            .boxed_unsync();
        let out = decode(body, &[Coding::Gzip]).collect().await;
        assert!(matches!(out, Err(ErrorCode::HttpResponseContentCoding(_))));
    }
}
