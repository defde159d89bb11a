//! Declarations, rendering, placeholders and redaction of outbound credentials.

use super::*;
use crate::manifest::{Credential, HostPattern};

fn spec(toml: &str) -> Result<Spec, String> {
    let c: Credential = toml::from_str(toml).unwrap();
    let allowed = [
        HostPattern::parse("api.example.com").unwrap(),
        HostPattern::parse("*.example.org").unwrap(),
        HostPattern::parse("http://plain.example.com").unwrap(),
    ];
    Spec::parse(&c, &allowed)
}

#[test]
fn declarations_are_checked() {
    assert!(spec("secret = \"K\"\nhosts = [\"api.example.com\"]").is_ok());
    assert!(spec("secret = \"K\"\nhosts = [\"a.b.example.org\"]").is_ok());
    for (toml, want) in [
        ("secret = \"K\"\nhosts = []", "at least one host"),
        (
            "secret = \"K\"\nhosts = [\"evil.example.com\"]",
            "not within",
        ),
        (
            "secret = \"K\"\nhosts = [\"http://plain.example.com\"]",
            "https only",
        ),
        (
            "secret = \"K\"\nhosts = [\"api.example.com:8443\"]",
            "not within",
        ),
        (
            "secret = \"K\"\nhosts = [\"api.example.com\"]\nheader = \"host\"",
            "set by the host",
        ),
        (
            "secret = \"K\"\nhosts = [\"api.example.com\"]\nheader = \"a b\"",
            "not a valid header",
        ),
        (
            "secret = \"K\"\nhosts = [\"api.example.com\"]\nformat = \"Bearer\"",
            "exactly once",
        ),
        (
            "secret = \"K\"\nhosts = [\"api.example.com\"]\nformat = \"{} {}\"",
            "exactly once",
        ),
        (
            "secret = \"K\"\nhosts = [\"api.example.com\"]\nformat = \"{\"",
            "unclosed",
        ),
        (
            "secret = \"K\"\nhosts = [\"api.example.com\"]\nformat = \"a\\n{}\"",
            "printable",
        ),
        (
            "secret = \"../K\"\nhosts = [\"api.example.com\"]",
            "secret:",
        ),
    ] {
        let err = spec(toml).unwrap_err();
        assert!(err.contains(want), "{toml}: {err}");
    }
}

#[test]
fn formats_render_and_basic_is_encoded() {
    let bearer = spec("secret = \"K\"\nhosts = [\"api.example.com\"]").unwrap();
    let r = render(&bearer, &SecretValue::text("sk_live_123".into())).unwrap();
    assert_eq!(r.header, "Bearer sk_live_123");
    assert!(r.header.is_sensitive());
    let basic = spec(
        "secret = \"K\"\nhosts = [\"api.example.com\"]\nformat = \"Basic {user}:{}\"\nfield = \"password\"",
    )
    .unwrap();
    let value = SecretValue::object(r#"{"user":"ann","password":"pw-9876"}"#.into());
    let r = render(&basic, &value).unwrap();
    assert_eq!(r.header, "Basic YW5uOnB3LTk4NzY=");
    // The password is found inside the base64 of `user:password`.
    let redactor = Redactor::new(&[&r.forms]).unwrap();
    let out = redactor
        .finder
        .replace(b"auth: YW5uOnB3LTk4NzY= ok", REDACTED);
    assert!(
        !String::from_utf8_lossy(&out).contains("B3LTk4NzY"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    // A plain secret where fields are asked for, and the reverse, are errors without
    // the value in them.
    let err = render(&basic, &SecretValue::text("pw-9876".into()))
        .err()
        .unwrap();
    assert!(err.contains("plain value") && !err.contains("pw-9876"));
    let err = render(&bearer, &value).err().unwrap();
    assert!(err.contains("field") && !err.contains("pw-9876"));
    let err = render(&bearer, &SecretValue::text("a\r\nb".into()))
        .err()
        .unwrap();
    assert!(err.contains("control"));
}

/// A response body sent in frames of `step` bytes.
fn framed(text: &[u8], step: usize) -> wasmtime_wasi_http::WasiBody {
    use http_body_util::BodyExt;
    let frames: Vec<Result<Frame<Bytes>, ErrorCode>> = text
        .chunks(step)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    http_body_util::StreamBody::new(futures::stream::iter(frames)).boxed_unsync()
}

async fn read(response: http::Response<wasmtime_wasi_http::WasiBody>) -> String {
    use http_body_util::BodyExt;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn redaction_finds_values_split_across_frames_and_compressed() {
    let mut forms = Patterns::new();
    forms.add_text("s3cr3t-value/+=").unwrap();
    let r = Arc::new(Redactor::new(&[&forms]).unwrap());
    let text = format!(
        "a s3cr3t-value/+= b {} c {} d {} e",
        base64::engine::general_purpose::STANDARD.encode("xs3cr3t-value/+="),
        percent_encoding::utf8_percent_encode(
            "s3cr3t-value/+=",
            percent_encoding::NON_ALPHANUMERIC
        ),
        hex::encode("s3cr3t-value/+=")
    );
    for step in 1..text.len() {
        let response = http::Response::builder()
            .header("content-length", text.len())
            .body(framed(text.as_bytes(), step))
            .unwrap();
        let response = r.response(response);
        assert!(response.headers().get("content-length").is_none());
        let out = read(response).await;
        assert_eq!(out.matches("[REDACTED]").count(), 4, "step {step}: {out}");
        assert!(
            out.starts_with("a [REDACTED] b ") && out.ends_with(" e"),
            "{out}"
        );
    }
    // Compressed in each coding, and twice: decoded, then redacted.
    use super::super::decode::{Coding, decode, encode_for_tests};
    for codings in [
        vec![Coding::Gzip],
        vec![Coding::Deflate],
        vec![Coding::Brotli],
        vec![Coding::Zstd],
        vec![Coding::Gzip, Coding::Brotli],
    ] {
        let packed = encode_for_tests(text.as_bytes(), &codings).await;
        assert!(!packed.windows(6).any(|w| w == b"s3cr3t"));
        for step in [1, 5, packed.len()] {
            let body = decode(framed(&packed, step), &codings);
            let out = read(r.response(http::Response::new(body))).await;
            assert_eq!(out.matches("[REDACTED]").count(), 4, "{codings:?}: {out}");
            assert!(!out.contains("s3cr3t"), "{out}");
        }
    }
}
