//! Masking secret values out of captured output before it is stored.
//!
//! Every value an execution obtained (through `reveal`, or bound into its environment) is a
//! pattern: the whole value, every leaf of a multi-field value (strings, and numbers as they
//! were written, through nested objects and arrays), and the JSON-escaped and Rust-`Debug`
//! forms of each, as a program that logs a value inside JSON or with `{:?}` prints it. One
//! Aho-Corasick pass (leftmost-longest) runs over stdout and stderr as one stream, in the order
//! they were written, so a value split between the two is still found; each match becomes `***`
//! in every stream it touches.
//!
//! The rules that keep masking from becoming an oracle or a denial of service:
//! - **Truncation does not depend on content.** When a stream was cut at its cap, a fixed tail
//!   of it (at least [`TAIL_MIN`] bytes, and at least the longest pattern, so no cut-off value
//!   can leave its beginning behind) is dropped and [`CUT_MARKER`] put in its place, whatever
//!   the bytes were. The stored length and bytes then say nothing about whether the end of the
//!   output was a prefix of a secret.
//! - **Short values are not patterns.** A form shorter than [`MIN_PATTERN_BYTES`] is not
//!   masked: masking every `on` or `42` would wreck the output and tell little.
//! - **Bounded cost.** At most [`MAX_PATTERNS`] patterns of [`MAX_PATTERN_BYTES`] in all; an
//!   execution that read more secret material has its output withheld ([`WITHHELD`]), never
//!   stored unmasked. Masking runs on the record writer's thread, not on a data-plane worker.

use super::output::{Captured, Stream};
use crate::secrets::SecretValue;
use aho_corasick::{AhoCorasick, MatchKind};

const MASK: &[u8] = b"***";

/// Forms shorter than this many bytes are not masked.
pub const MIN_PATTERN_BYTES: usize = 4;
/// The most patterns one execution's output is masked with.
pub const MAX_PATTERNS: usize = 4096;
/// The most pattern bytes one execution's output is masked with.
pub const MAX_PATTERN_BYTES: usize = 2 << 20;
/// The least a cut stream loses at its end.
pub const TAIL_MIN: usize = 1024;
/// What replaces the dropped tail of a stream that was cut at its cap.
pub const CUT_MARKER: &[u8] = b"\n[edgeward: output cut at the cap]\n";
/// What replaces a stream whose execution read more secret material than masking takes.
pub const WITHHELD: &[u8] = b"[edgeward: output withheld: this execution read more secret \
material than output masking handles (4096 forms, 2 MiB); nothing of it was stored]\n";

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
    /// Masks the output (see the module's rules).
    pub fn mask(&self) -> Masked {
        mask(&self.captured, &self.values)
    }
}

/// Too much secret material to mask within the bounds.
#[derive(Debug)]
struct TooMuch;

struct Patterns {
    list: Vec<Vec<u8>>,
    bytes: usize,
}

impl Patterns {
    /// Adds `s` and its escaped forms.
    fn add_forms(&mut self, s: &str) -> Result<(), TooMuch> {
        self.add(s.as_bytes())?;
        if let Ok(json) = serde_json::to_string(s) {
            self.add(&json.as_bytes()[1..json.len() - 1])?;
        }
        let debug = format!("{s:?}");
        self.add(&debug.as_bytes()[1..debug.len() - 1])
    }

    fn add(&mut self, form: &[u8]) -> Result<(), TooMuch> {
        if form.len() < MIN_PATTERN_BYTES || self.list.iter().any(|p| p == form) {
            return Ok(());
        }
        self.bytes += form.len();
        if self.list.len() >= MAX_PATTERNS || self.bytes > MAX_PATTERN_BYTES {
            return Err(TooMuch);
        }
        self.list.push(form.to_vec());
        Ok(())
    }

    /// Every leaf of a JSON value: strings, and numbers as written.
    fn add_leaves(&mut self, v: &serde_json::Value) -> Result<(), TooMuch> {
        match v {
            serde_json::Value::String(s) => self.add_forms(s),
            // With `arbitrary_precision`, a number prints exactly as it was written.
            serde_json::Value::Number(n) => self.add(n.to_string().as_bytes()),
            serde_json::Value::Array(items) => items.iter().try_for_each(|i| self.add_leaves(i)),
            serde_json::Value::Object(map) => map.values().try_for_each(|i| self.add_leaves(i)),
            serde_json::Value::Bool(_) | serde_json::Value::Null => Ok(()),
        }
    }
}

fn patterns(values: &[SecretValue]) -> Result<Vec<Vec<u8>>, TooMuch> {
    let mut p = Patterns {
        list: Vec::new(),
        bytes: 0,
    };
    for v in values {
        let text = v.expose();
        p.add_forms(text)?;
        if v.is_object()
            && let Ok(doc) = serde_json::from_str::<serde_json::Value>(text)
        {
            p.add_leaves(&doc)?;
        }
    }
    Ok(p.list)
}

/// `captured` with every form of every value replaced by `***`, each cut stream's tail
/// replaced by [`CUT_MARKER`].
pub fn mask(captured: &Captured, values: &[SecretValue]) -> Masked {
    let cut = captured.cut;
    let patterns = match patterns(values) {
        Ok(p) => p,
        Err(TooMuch) => {
            let withheld = |s: usize| {
                if captured.len[s] > 0 || cut[s] {
                    WITHHELD.to_vec()
                } else {
                    Vec::new()
                }
            };
            return Masked {
                stdout: withheld(0),
                stderr: withheld(1),
                cut,
            };
        }
    };
    let matches: Vec<(usize, usize)> = if patterns.is_empty() {
        Vec::new()
    } else {
        match AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
        {
            Ok(ac) => ac
                .find_iter(&captured.bytes)
                .map(|m| (m.start(), m.end()))
                .collect(),
            Err(e) => {
                // Cannot happen within the caps above; fail closed all the same.
                tracing::error!(error = %e, "cannot build the output masker; output withheld");
                return Masked {
                    stdout: WITHHELD.to_vec(),
                    stderr: WITHHELD.to_vec(),
                    cut,
                };
            }
        }
    };
    // A cut stream keeps everything but a tail that depends only on the values read.
    let longest = patterns.iter().map(Vec::len).max().unwrap_or(0);
    let tail = TAIL_MIN.max(longest);
    let keep = [0, 1].map(|s| {
        if cut[s] {
            captured.len[s].saturating_sub(tail)
        } else {
            captured.len[s]
        }
    });
    let mut out = [Vec::new(), Vec::new()];
    let mut last_mask: [Option<usize>; 2] = [None, None];
    let mut pos = [0usize; 2];
    let (mut m, mut at) = (0usize, 0usize);
    for &(stream, len) in &captured.chunks {
        let s = stream as usize;
        for i in at..at + len {
            if pos[s] < keep[s] {
                while m < matches.len() && matches[m].1 <= i {
                    m += 1;
                }
                if m < matches.len() && matches[m].0 <= i {
                    if last_mask[s] != Some(m) {
                        out[s].extend_from_slice(MASK);
                        last_mask[s] = Some(m);
                    }
                } else {
                    out[s].push(captured.bytes[i]);
                }
            }
            pos[s] += 1;
        }
        at += len;
    }
    for s in [Stream::Stdout as usize, Stream::Stderr as usize] {
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
        assert_eq!(
            String::from_utf8_lossy(&m.stdout),
            "a *** b ****** *** *** *** json:*** raw:*** end"
        );
        // Short forms are left alone.
        let c = captured(64, &[(Stream::Stdout, b"abc abc")]).await;
        assert_eq!(
            mask(&c, &[SecretValue::text("abc".into())]).stdout,
            b"abc abc"
        );
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
}
