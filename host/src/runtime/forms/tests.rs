//! The forms list against encoders written here, apart from it, as upstreams and programs
//! write them; random values, chunk boundaries and surroundings.

use super::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A random value: ASCII letters, digits, punctuation, some non-ASCII.
fn value(rng: &mut StdRng) -> String {
    const POOL: &[&str] = &[
        "a", "b", "k", "Z", "Q", "0", "7", "9", "_", "-", "/", "+", "=", ".", "~", "&", "<", ">",
        "\"", "'", "\\", " ", "%", "é", "ü", "ß", "日", "🔑",
    ];
    let len = rng.random_range(6..40);
    let mut s: String = (0..len)
        .map(|_| {
            if rng.random_bool(0.6) {
                let c = rng.random_range(b'a'..=b'z');
                if rng.random_bool(0.5) {
                    (c as char).to_string()
                } else {
                    (c.to_ascii_uppercase() as char).to_string()
                }
            } else {
                POOL[rng.random_range(0..POOL.len())].to_string()
            }
        })
        .collect();
    // Realistic keys start and end with a letter.
    s.insert(0, 'k');
    s.push('z');
    s
}

/// Random text around a form.
fn filler(rng: &mut StdRng) -> Vec<u8> {
    let len = rng.random_range(0..60);
    (0..len)
        .map(|_| {
            let c = rng.random_range(0..40u8);
            match c {
                0..26 => b'a' + c,
                26..36 => b'0' + c - 26,
                36 => b' ',
                37 => b'\n',
                38 => b'"',
                _ => b':',
            }
        })
        .collect()
}

fn upper_hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02X}")).collect()
}

/// Inserts whitespace between characters: line breaks every `every`, or random blanks.
fn wrap(rng: &mut StdRng, text: &[u8], core: (usize, usize)) -> (Vec<u8>, (usize, usize)) {
    let style = rng.random_range(0..4);
    let mut out = Vec::with_capacity(text.len() * 2);
    let mut map = Vec::with_capacity(text.len() + 1);
    for (i, &b) in text.iter().enumerate() {
        if i > 0 {
            match style {
                0 => {}
                1 if i % 76 == 0 => out.extend_from_slice(b"\r\n"),
                2 if i % 64 == 0 => out.extend_from_slice(b"\n    "),
                3 if rng.random_bool(0.2) => {
                    for _ in 0..rng.random_range(1..4) {
                        out.push(b" \t\n"[rng.random_range(0..3)]);
                    }
                }
                _ => {}
            }
        }
        map.push(out.len());
        out.push(b);
    }
    map.push(out.len());
    let end = if core.1 == 0 { 0 } else { map[core.1 - 1] + 1 };
    (out, (map[core.0], end))
}

/// `s` in `form` the way an outside encoder writes it, and the range of the bytes that
/// depend on `s` alone (what must be caught).
fn encode(rng: &mut StdRng, form: Form, s: &str) -> (Vec<u8>, (usize, usize)) {
    let whole = |v: Vec<u8>| {
        let n = v.len();
        (v, (0, n))
    };
    match form {
        Form::Raw => whole(s.as_bytes().to_vec()),
        Form::Lower => whole(s.to_lowercase().into_bytes()),
        Form::Upper => whole(s.to_uppercase().into_bytes()),
        Form::Json => {
            let j = serde_json::to_string(s).unwrap();
            whole(j.as_bytes()[1..j.len() - 1].to_vec())
        }
        Form::JsonSlash => {
            let j = serde_json::to_string(s).unwrap().replace('/', "\\/");
            whole(j.as_bytes()[1..j.len() - 1].to_vec())
        }
        Form::JsonAscii | Form::JsonAsciiSlash => {
            let mut out = String::new();
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '/' if form == Form::JsonAsciiSlash => out.push_str("\\/"),
                    c if c.is_ascii() && !"<>&".contains(c) => out.push(c),
                    c => {
                        for u in c.encode_utf16(&mut [0; 2]) {
                            // Upper-case hex, as some encoders write it.
                            out.push_str(&format!("\\u{:04X}", *u));
                        }
                    }
                }
            }
            whole(out.into_bytes())
        }
        Form::Debug => {
            let d = format!("{s:?}");
            whole(d.as_bytes()[1..d.len() - 1].to_vec())
        }
        Form::PercentUnreserved | Form::PercentAlnum | Form::PercentAll => {
            let lower = rng.random_bool(0.5);
            let mut out = String::new();
            for b in s.bytes() {
                let keep = match form {
                    Form::PercentUnreserved => b.is_ascii_alphanumeric() || b"-._~".contains(&b),
                    Form::PercentAlnum => b.is_ascii_alphanumeric(),
                    _ => false,
                };
                if keep {
                    out.push(b as char);
                } else if lower {
                    out.push_str(&format!("%{b:02x}"));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            whole(out.into_bytes())
        }
        Form::PercentForm => {
            let mut out = String::new();
            for b in s.bytes() {
                match b {
                    b' ' => out.push('+'),
                    b if b.is_ascii_alphanumeric() || b"*-._".contains(&b) => out.push(b as char),
                    b => out.push_str(&format!("%{b:02X}")),
                }
            }
            whole(out.into_bytes())
        }
        Form::Hex => {
            let h = if rng.random_bool(0.5) {
                upper_hex(s)
            } else {
                hex::encode(s)
            };
            let n = h.len();
            wrap(rng, h.as_bytes(), (0, n))
        }
        Form::Base64 | Form::Base64Url => {
            // Inside a longer encoding: `user:` before it, more after, padded.
            let before: Vec<u8> = (0..rng.random_range(0..7))
                .map(|_| rng.random_range(b'a'..=b'z'))
                .collect();
            let after: Vec<u8> = (0..rng.random_range(0..5)).map(|_| b'x').collect();
            let mut raw = before.clone();
            raw.extend_from_slice(s.as_bytes());
            raw.extend_from_slice(&after);
            let engine = if form == Form::Base64 {
                &STANDARD
            } else {
                &URL_SAFE
            };
            let text = engine.encode(&raw);
            let first = (8 * before.len()).div_ceil(6);
            let last = (8 * (before.len() + s.len())) / 6;
            wrap(rng, text.as_bytes(), (first, last))
        }
        Form::Html => {
            let mut out = String::new();
            for c in s.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '"' => out.push_str("&quot;"),
                    '\'' => out.push_str("&#39;"),
                    c => out.push(c),
                }
            }
            whole(out.into_bytes())
        }
        Form::HtmlDecimal => whole(
            s.chars()
                .map(|c| format!("&#{};", c as u32))
                .collect::<String>()
                .into_bytes(),
        ),
        Form::HtmlHex => whole(
            s.chars()
                .map(|c| {
                    if rng.random_bool(0.5) {
                        format!("&#X{:X};", c as u32)
                    } else {
                        format!("&#x{:x};", c as u32)
                    }
                })
                .collect::<String>()
                .into_bytes(),
        ),
        Form::Utf16Le => whole(s.encode_utf16().flat_map(u16::to_le_bytes).collect()),
        Form::Utf16Be => whole(s.encode_utf16().flat_map(u16::to_be_bytes).collect()),
    }
}

/// Splits `data` at random places.
fn chunks<'a>(rng: &mut StdRng, data: &'a [u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let most = if rng.random_bool(0.3) { 1 } else { 97 };
        let n = rng.random_range(1..=(data.len() - at).min(most));
        out.push(&data[at..at + n]);
        at += n;
    }
    out
}

fn finder_of(values: &[&str]) -> Finder {
    let mut p = Patterns::new();
    for v in values {
        p.add_text(v).unwrap();
    }
    Finder::new(&p).unwrap()
}

#[test]
fn every_form_is_caught_at_any_chunking_inside_any_text() {
    let mut rng = StdRng::seed_from_u64(0x5eed_2700);
    for case in 0..300 {
        let v = value(&mut rng);
        let finder = finder_of(&[&v]);
        for form in Form::ALL {
            let (encoded, (start, end)) = encode(&mut rng, form, &v);
            let left = filler(&mut rng);
            let right = filler(&mut rng);
            let mut stream = left.clone();
            stream.extend_from_slice(&encoded);
            stream.extend_from_slice(&right);
            let (start, end) = ((left.len() + start) as u64, (left.len() + end) as u64);
            // The occurrences found, chunk by chunk, cover the value's bytes.
            let mut cursor = finder.cursor();
            let mut spans: Vec<(u64, u64)> = Vec::new();
            let pieces = chunks(&mut rng, &stream);
            for piece in &pieces {
                finder.scan(&mut cursor, piece, |s, e| {
                    spans.push((s, e));
                    true
                });
            }
            let covered = (start..end).all(|p| spans.iter().any(|&(s, e)| s <= p && p < e));
            // `is_match` (no offsets kept) agrees with a scan, with and without the value.
            assert!(finder.is_match(&stream), "{form:?}");
            let mut any = false;
            finder.scan(&mut finder.cursor(), &left, |_, _| {
                any = true;
                false
            });
            assert_eq!(finder.is_match(&left), any, "{form:?}");
            assert!(
                covered,
                "case {case}, {form:?} of {v:?}: {:?} in {:?}, spans {spans:?}",
                String::from_utf8_lossy(&encoded),
                String::from_utf8_lossy(&stream)
            );
            // A redacting stream gives the same bytes whatever the chunking, and none of the
            // value's.
            let mut r = Redacting::new(&finder, b"\x01");
            let mut out = Vec::new();
            for piece in &pieces {
                out.extend(r.push(&finder, piece, false));
            }
            out.extend(r.push(&finder, &[], true));
            assert_eq!(out, finder.replace(&stream, b"\x01"), "{form:?}");
            assert!(out.contains(&1), "{form:?}");
        }
    }
}

#[test]
fn the_forms_list_is_the_one_documented() {
    let docs = include_str!("../../../../docs/credentials.md");
    for form in Form::ALL {
        let name = format!("`{form:?}`");
        assert!(
            docs.contains(&name),
            "docs/credentials.md does not list {name}"
        );
    }
}

#[test]
fn a_plain_value_in_text_is_replaced_once_and_the_rest_kept() {
    let f = finder_of(&["s3cr3t-value/+="]);
    let text = format!(
        "a s3cr3t-value/+= b {} c S3CR3T-VALUE/+= d",
        STANDARD.encode("xs3cr3t-value/+=")
    );
    let out = String::from_utf8(f.replace(text.as_bytes(), b"[REDACTED]")).unwrap();
    assert!(out.starts_with("a [REDACTED] b "), "{out}");
    assert!(out.ends_with(" c [REDACTED] d"), "{out}");
    assert_eq!(out.matches("[REDACTED]").count(), 3, "{out}");
    // Short forms are not looked for.
    let mut p = Patterns::new();
    p.add_text("abc").unwrap();
    assert!(p.list.iter().all(|x| x.len() >= MIN_PATTERN_BYTES));
}

#[test]
fn a_long_run_of_blanks_ends_a_partial_match_and_bounds_what_is_held() {
    let f = finder_of(&["sk_live_0123456789"]);
    let mut r = Redacting::new(&f, b"*");
    let mut out = r.push(&f, b"sk_live_01", false);
    let blanks = vec![b' '; 1 << 20];
    for piece in blanks.chunks(4096) {
        out.extend(r.push(&f, piece, false));
        assert!(r.held() <= (f.longest() + 1) * (MAX_GAP + 1) + 4096);
    }
    out.extend(r.push(&f, b"23456789", true));
    // Split by a megabyte of blanks, it is no longer one value; nothing was lost.
    assert_eq!(out.len(), 10 + (1 << 20) + 8);
}

#[test]
fn text_that_cannot_begin_a_value_is_let_out_at_once() {
    let f = finder_of(&["sk_live_0123456789"]);
    let mut r = Redacting::new(&f, b"*");
    // Nothing held: no occurrence can hold any of these bytes.
    assert_eq!(r.push(&f, b"((((", false), b"((((");
    assert_eq!(r.held(), 0);
    // A possible start is held until it cannot be one, then let out unchanged.
    assert_eq!(r.push(&f, b"(sk_live", false), b"(");
    assert_eq!(r.push(&f, b"_01(", false), b"sk_live_01(");
    assert_eq!(r.push(&f, b"sk_live_0123456789)", true), b"*)");
}

/// Steps taken to scan `stream` in pieces of `step`.
fn work(finder: &Finder, stream: &[u8], step: usize) -> u64 {
    let mut r = Redacting::new(finder, b"*");
    for piece in stream.chunks(step) {
        let _ = r.push(finder, piece, false);
    }
    let _ = r.push(finder, &[], true);
    r.work()
}

#[test]
fn cost_is_linear_in_the_output_whatever_the_chunking() {
    let long = "k".repeat(4000) + "zZ";
    let key = "sk_live_0123456789abcdef";
    let finder = finder_of(&[key, &long, "aaaaab"]);
    let patterns = {
        let mut p = Patterns::new();
        for v in [key, long.as_str(), "aaaaab"] {
            p.add_text(v).unwrap();
        }
        p.len() as u64
    };
    // Hostile shapes: a long value's prefix over and over (every byte a partial match),
    // near-misses, the value itself back to back (a match at every few bytes), blanks.
    let shapes: Vec<Vec<u8>> = vec![
        "k".repeat(4001).into_bytes(),
        "aaaa".repeat(1000).into_bytes(),
        key.repeat(200).into_bytes(),
        (key.to_string() + "\n ").repeat(200).into_bytes(),
        vec![b' '; 5000],
    ];
    for shape in &shapes {
        let n = shape.len();
        let one = work(&finder, shape, n);
        let big: Vec<u8> = shape.repeat(16);
        let whole = work(&finder, &big, big.len());
        // Chunking changes nothing: a byte is stepped once, however it arrives.
        assert_eq!(work(&finder, &big, 1), whole);
        assert_eq!(work(&finder, &big, 7), whole);
        // Sixteen times the output, sixteen times the steps (a byte's step, and each
        // occurrence ending there, at most one per pattern).
        assert!(whole <= 16 * one + 16, "{whole} vs {one}");
        assert!(whole <= big.len() as u64 * (1 + patterns));
        assert!(
            whole <= 3 * big.len() as u64,
            "{whole} steps for {} bytes",
            big.len()
        );
    }
}
