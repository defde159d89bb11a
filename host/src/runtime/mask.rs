//! Masking secret values out of captured output before it is stored.
//!
//! Every value an execution obtained (through `reveal`, or bound into its environment, or a
//! credential the host attached) is looked for in every form of [`super::forms`]: the whole
//! value, and every leaf of a multi-field value (strings, and numbers as they were written,
//! through nested objects and arrays). One pass runs over stdout and stderr as one stream, in
//! the order they were written, so a value split between the two is still found, and one over
//! each stream alone; each match becomes `***` in every stream it touches.
//!
//! The rules that keep masking from becoming an oracle or a denial of service:
//! - **Truncation does not depend on content.** When a stream was cut at its cap, a fixed tail
//!   of it (at least [`TAIL_MIN`] bytes, and at least the longest pattern's reach with
//!   whitespace between its characters, so no cut-off value
//!   can leave its beginning behind) is dropped and [`CUT_MARKER`] put in its place, whatever
//!   the bytes were. The stored length and bytes then say nothing about whether the end of the
//!   output was a prefix of a secret.
//! - **Short values are not patterns.** A form shorter than
//!   [`super::forms::MIN_PATTERN_BYTES`] is not
//!   masked: masking every `on` or `42` would wreck the output and tell little.
//! - **Bounded cost.** At most [`MAX_PATTERNS`] patterns of [`MAX_PATTERN_BYTES`] in all; an
//!   execution that read more secret material has its output withheld ([`WITHHELD`]), never
//!   stored unmasked. Masking runs on the record writer's thread, not on a data-plane worker.

use super::forms::{Finder, Patterns, TooMuch};
use super::output::{Captured, Stream};
use crate::secrets::SecretValue;

const MASK: &[u8] = b"***";

/// The most patterns one execution's output is masked with.
pub const MAX_PATTERNS: usize = 16384;
/// The most pattern bytes one execution's output is masked with.
pub const MAX_PATTERN_BYTES: usize = 2 << 20;
/// The least a cut stream loses at its end.
pub const TAIL_MIN: usize = 1024;
/// What replaces the dropped tail of a stream that was cut at its cap.
pub const CUT_MARKER: &[u8] = b"\n[edgeward: output cut at the cap]\n";
/// What replaces a stream whose execution read more secret material than masking takes.
pub const WITHHELD: &[u8] = b"[edgeward: output withheld: this execution read more secret \
material than output masking handles (16384 forms, 2 MiB); nothing of it was stored]\n";

/// An execution's output after masking.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Masked {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// Whether each stream was cut at its cap.
    pub cut: [bool; 2],
}

/// An execution's output and the values it read, not yet masked: what an execution hands the
/// record writer, which masks it off the data plane.
pub struct Unmasked {
    /// The output.
    pub captured: Captured,
    /// Every value the execution obtained.
    pub values: Vec<SecretValue>,
}

impl std::fmt::Debug for Unmasked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unmasked")
            .field("bytes", &self.captured.bytes.len())
            .field("values", &self.values.len())
            .finish()
    }
}

impl Unmasked {
    /// Masks the output (see the module's rules), building the masker.
    pub fn mask(&self) -> Masked {
        mask_with(&self.captured, &Masker::new(&self.values))
    }

    /// Masks the output with a masker built for these values.
    pub fn mask_with(&self, masker: &Masker) -> Masked {
        mask_with(&self.captured, masker)
    }
}

/// The patterns of `values` (every form of each, [`super::forms`]), within the bounds.
pub fn patterns(values: &[SecretValue]) -> Result<Patterns, TooMuch> {
    let mut p = Patterns::bounded(MAX_PATTERNS, MAX_PATTERN_BYTES);
    for v in values {
        p.add_secret(v)?;
    }
    Ok(p)
}

/// What output is masked with: a finder of every form of the values an execution read, or
/// too much of them (the output is withheld). Built once per package version and set of
/// values by the record writer, not per record.
#[derive(Debug)]
pub enum Masker {
    /// No value long enough to look for.
    Nothing,
    /// These forms.
    Finder(Box<Finder>),
    /// More secret material than masking handles: output withheld.
    TooMuch,
}

impl Masker {
    /// The masker of `values`.
    pub fn new(values: &[SecretValue]) -> Masker {
        match patterns(values) {
            Err(TooMuch) => Masker::TooMuch,
            Ok(p) if p.is_empty() => Masker::Nothing,
            Ok(p) => match Finder::new(&p) {
                Some(f) => Masker::Finder(Box::new(f)),
                // Cannot happen within the caps above; fail closed all the same.
                None => Masker::TooMuch,
            },
        }
    }

    /// The heap memory it holds, in bytes (what a cache of maskers counts).
    pub fn memory(&self) -> usize {
        match self {
            Masker::Finder(f) => f.memory(),
            Masker::Nothing | Masker::TooMuch => 0,
        }
    }

    /// `text` with every form of every value replaced by `***` (a recorded request path).
    pub fn text(&self, text: &str) -> String {
        match self {
            Masker::Nothing => text.to_string(),
            Masker::Finder(f) => {
                String::from_utf8_lossy(&f.replace(text.as_bytes(), MASK)).into_owned()
            }
            Masker::TooMuch => String::from_utf8_lossy(MASK).into_owned(),
        }
    }
}

/// The most matches one execution's output is searched for; more (a pathological set of
/// overlapping values) withholds the output.
const MAX_MATCHES: usize = 1 << 18;

/// Marks, in a difference array over `haystack`, every byte any pattern occurrence covers
/// (overlapping occurrences included, so one value cannot shield part of another).
fn mark(finder: &Finder, haystack: &[u8], diff: &mut [i32], count: &mut usize) -> bool {
    let mut complete = true;
    finder.scan(&mut finder.cursor(), haystack, |start, end| {
        *count += 1;
        if *count > MAX_MATCHES {
            complete = false;
            return false;
        }
        // Offsets within `haystack`, which is in memory.
        diff[start as usize] += 1;
        diff[end as usize] -= 1;
        true
    });
    complete
}

/// `captured` with every form of every value replaced by `***`, each cut stream's tail
/// replaced by [`CUT_MARKER`].
pub fn mask(captured: &Captured, values: &[SecretValue]) -> Masked {
    mask_with(captured, &Masker::new(values))
}

/// [`mask`] with a masker built once for the values.
pub fn mask_with(captured: &Captured, masker: &Masker) -> Masked {
    let cut = captured.cut;
    // Nothing written, nothing to mask: no automaton is built (most executions print nothing).
    if captured.bytes.is_empty() && cut == [false, false] {
        return Masked {
            stdout: Vec::new(),
            stderr: Vec::new(),
            cut,
        };
    }
    let withheld = || {
        let one = |s: usize| {
            if captured.len[s] > 0 || cut[s] {
                WITHHELD.to_vec()
            } else {
                Vec::new()
            }
        };
        Masked {
            stdout: one(0),
            stderr: one(1),
            cut,
        }
    };
    let finder = match masker {
        Masker::TooMuch => return withheld(),
        Masker::Nothing => None,
        Masker::Finder(f) => Some(f),
    };
    // Each stream's bytes, and where each of them sits in the merged stream.
    let mut own: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut at_global: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    let mut at = 0;
    for &(stream, len) in &captured.chunks {
        let s = stream as usize;
        own[s].extend_from_slice(&captured.bytes[at..at + len]);
        at_global[s].extend(at..at + len);
        at += len;
    }
    // Matched in the merged stream (a value split between stdout and stderr) and in each
    // stream alone (a value written to one stream around writes to the other).
    let mut global = vec![0i32; captured.bytes.len() + 1];
    let mut local = [vec![0i32; own[0].len() + 1], vec![0i32; own[1].len() + 1]];
    if let Some(f) = finder {
        let mut count = 0;
        let complete = mark(f, &captured.bytes, &mut global, &mut count)
            && mark(f, &own[0], &mut local[0], &mut count)
            && mark(f, &own[1], &mut local[1], &mut count);
        if !complete {
            return withheld();
        }
    }
    let covered = |diff: &[i32]| -> Vec<bool> {
        let mut depth = 0;
        diff[..diff.len() - 1]
            .iter()
            .map(|d| {
                depth += d;
                depth > 0
            })
            .collect()
    };
    let global = covered(&global);
    // A cut stream keeps everything but a tail that depends only on the values read.
    // A match may span whitespace: the longest form's reach, blanks included.
    let longest = finder.map_or(0, |f| f.reach());
    let tail = TAIL_MIN.max(longest);
    let mut out = [Vec::new(), Vec::new()];
    for s in [Stream::Stdout as usize, Stream::Stderr as usize] {
        let local = covered(&local[s]);
        let keep = if cut[s] {
            own[s].len().saturating_sub(tail)
        } else {
            own[s].len()
        };
        let mut in_mask = false;
        for p in 0..keep {
            if local[p] || global[at_global[s][p]] {
                if !in_mask {
                    out[s].extend_from_slice(MASK);
                    in_mask = true;
                }
            } else {
                in_mask = false;
                out[s].push(own[s][p]);
            }
        }
        if cut[s] {
            out[s].extend_from_slice(CUT_MARKER);
        }
    }
    let [stdout, stderr] = out;
    Masked {
        stdout,
        stderr,
        cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::output::CapturedOutput;
    use tokio::io::AsyncWriteExt;

    async fn captured(cap: usize, writes: &[(Stream, &[u8])]) -> Captured {
        let (mut out, mut err) = CapturedOutput::pair(cap);
        for (s, bytes) in writes {
            match s {
                Stream::Stdout => out.write_all(bytes).await.unwrap(),
                Stream::Stderr => err.write_all(bytes).await.unwrap(),
            }
        }
        out.take()
    }

    #[tokio::test]
    async fn masks_values_leaves_and_escaped_forms() {
        let values = [
            SecretValue::text("hunter2".into()),
            SecretValue::object(
                r#"{"user":"bobby","db":{"pw":"p\"w\\1\n"},"keys":["k-1234"],"n":123456789012345678901234567890}"#.into(),
            ),
        ];
        let c = captured(
            1 << 16,
            &[(
                Stream::Stdout,
                b"a hunter2 b hunter2hunter2 bobby k-1234 123456789012345678901234567890 \
                  json:p\\\"w\\\\1\\n raw:p\"w\\1\n end",
            )],
        )
        .await;
        let m = mask(&c, &values);
        // Whitespace is matched between a form's characters, not after its last one: the
        // value's trailing newline stays.
        assert_eq!(
            String::from_utf8_lossy(&m.stdout),
            "a *** b *** *** *** *** json:*** raw:***\n end"
        );
        // Short forms are left alone.
        let c = captured(64, &[(Stream::Stdout, b"abc abc")]).await;
        assert_eq!(
            mask(&c, &[SecretValue::text("abc".into())]).stdout,
            b"abc abc"
        );
    }

    #[tokio::test]
    async fn overlapping_values_interleaved_streams_json_text_and_other_escapes() {
        let values = [
            SecretValue::text("user-admin".into()),
            SecretValue::text("admin-password-xyz".into()),
            SecretValue::text(r#"{"private_key":"-----BEGIN KEY-----\nabc"}"#.into()),
            SecretValue::text("p&ss<w>rd/é".into()),
        ];
        let c = captured(
            1 << 16,
            &[
                (Stream::Stdout, b"a user-admin-password-xyz b "),
                (Stream::Stdout, b"sk_live_01"),
                (Stream::Stderr, b"x"),
                (Stream::Stdout, b"23456789 "),
                (Stream::Stdout, b"-----BEGIN KEY-----\nabc "),
                (Stream::Stdout, br"go:p\u0026ss\u003cw\u003erd/\u00e9 "),
                (Stream::Stdout, b"url:p%26ss%3Cw%3Erd%2F%C3%A9 "),
                (Stream::Stdout, "php:p&ss<w>rd\\/é".as_bytes()),
            ],
        )
        .await;
        let mut with_stripe = values.to_vec();
        with_stripe.push(SecretValue::text("sk_live_0123456789".into()));
        let m = mask(&c, &with_stripe);
        let out = String::from_utf8_lossy(&m.stdout);
        for leak in ["password", "sk_live", "BEGIN KEY", "ss<w", "%26ss", "u0026"] {
            assert!(!out.contains(leak), "{leak} in {out}");
        }
        assert!(out.starts_with("a *** b "), "{out}");
        assert_eq!(m.stderr, b"x");
    }

    #[tokio::test]
    async fn a_value_split_between_stdout_and_stderr_is_masked_in_both() {
        let values = [SecretValue::text("sk_live_0123456789".into())];
        let c = captured(
            1 << 16,
            &[
                (Stream::Stdout, b"key=sk_live_01"),
                (Stream::Stderr, b"23456789 done"),
            ],
        )
        .await;
        let m = mask(&c, &values);
        assert_eq!(m.stdout, b"key=***");
        assert_eq!(m.stderr, b"*** done");
    }

    #[tokio::test]
    async fn the_cut_does_not_depend_on_whether_a_guess_matched() {
        let secret = "sk_live_abcdefghijklmnop";
        let values = [SecretValue::text(secret.into())];
        let cap = 4096;
        let mut lengths = std::collections::HashSet::new();
        for guess in [
            "sk_live_a",
            "sk_live_b",
            "zzzzzzzzz",
            "sk_live_abcdefghijklmno",
        ] {
            let mut body = vec![b'x'; cap - guess.len()];
            body.extend_from_slice(guess.as_bytes());
            body.extend_from_slice(b"more than the cap");
            let c = captured(cap, &[(Stream::Stdout, &body)]).await;
            let m = mask(&c, &values);
            assert!(m.cut[0] && m.stdout.ends_with(CUT_MARKER));
            assert!(!String::from_utf8_lossy(&m.stdout).contains("sk_live"));
            lengths.insert(m.stdout.clone());
        }
        // Every guess gives the same stored bytes.
        assert_eq!(lengths.len(), 1);
    }

    #[tokio::test]
    async fn too_much_secret_material_withholds_the_output() {
        let fields: serde_json::Map<String, serde_json::Value> = (0..MAX_PATTERNS + 1)
            .map(|i| (format!("f{i}"), format!("value-{i:06}").into()))
            .collect();
        let values = [SecretValue::object(
            serde_json::Value::Object(fields).to_string(),
        )];
        let c = captured(1024, &[(Stream::Stdout, b"value-000001 printed")]).await;
        let m = mask(&c, &values);
        assert_eq!(m.stdout, WITHHELD);
        assert!(m.stderr.is_empty());
    }

    /// The figures in BENCHMARKS.md (issue 27): building a masker for three 20,000-character
    /// values, and masking a 64 KiB record with it. Prints; asserts only that it masked.
    /// `cargo test [--release] -p edgeward-host --lib masking_cost -- --ignored --nocapture`
    #[tokio::test]
    #[ignore]
    async fn masking_cost_per_record_with_a_cached_masker() {
        let mut seed = 0x2700_u64;
        let values: Vec<SecretValue> = (0..3)
            .map(|_| {
                SecretValue::text(
                    (0..20_000)
                        .map(|_| {
                            seed = seed
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407);
                            char::from(
                                b"abcdefghijklmnopqrstuvwxyz0123456789"[(seed >> 33) as usize % 36],
                            )
                        })
                        .collect(),
                )
            })
            .collect();
        let started = std::time::Instant::now();
        let masker = Masker::new(&values);
        let built = started.elapsed();
        let writes: Vec<(Stream, &[u8])> = values
            .iter()
            .map(|v| (Stream::Stdout, v.expose().as_bytes()))
            .collect();
        let c = captured(1 << 16, &writes).await;
        let rounds = 20;
        let started = std::time::Instant::now();
        let mut out = Masked::default();
        for _ in 0..rounds {
            out = mask_with(&c, &masker);
        }
        eprintln!(
            "masker for 3 x 20,000 characters built in {built:?}; a 64 KiB record masked in {:?}",
            started.elapsed() / rounds
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains(&values[0].expose()[..100]));
    }
}
