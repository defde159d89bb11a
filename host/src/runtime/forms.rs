//! The forms of a secret value: the one list that output masking ([`super::mask`]), response
//! redaction ([`super::credentials`]) and the masking of recorded request paths
//! (`crate::executions`) look for, and the one matcher that finds them in a stream.
//!
//! A value `v` is looked for as: `v` itself; JSON-escaped (serde's escaping, with `\/` as PHP
//! writes it, and with `\uXXXX` for every non-ASCII or HTML-special character as Go and Python
//! write it); Rust's `{:?}`; percent-encoded (RFC 3986 unreserved kept, every non-alphanumeric
//! byte encoded, every byte encoded, and the `+` style of forms); hex; base64, standard and
//! URL-safe, at each of the three alignments it can have inside a longer encoding (the
//! characters that depend on `v`'s bytes alone, so `Basic base64(user:v)` is caught whatever
//! `user` is); HTML-escaped, and as decimal (`&#115;`) and hex (`&#x73;`) character
//! references; UTF-16, little- and big-endian; and lower- and upper-cased.
//!
//! **Case.** The matcher is ASCII case-insensitive, so the hex, percent and entity forms are
//! found in either case (and in mixed case), and so is `v` lower-, upper- or mixed-cased.
//! Unicode case mappings are listed as forms of their own. The cost is over-redaction of
//! text that equals a form but for case, which for a value of realistic length does not
//! happen by chance.
//!
//! **Whitespace between characters.** Base64 is wrapped at 76 (MIME) or 64 (PEM) characters,
//! hex dumps are spaced, JSON is indented. The matcher therefore runs over the stream with
//! whitespace (space, tab, CR, LF, VT, FF) skipped, and every pattern is stored with its own
//! whitespace removed: an occurrence of a form with whitespace inserted anywhere between its
//! characters is, in the skipped view, an occurrence of the stripped pattern, so it is found
//! (sound: nothing inserted can hide it). Each non-whitespace byte's offset in the real
//! stream is remembered, so a match maps back to the real bytes it spans, whitespace
//! included, and those are what get replaced. One pass, one state per byte: the cost is
//! linear in the stream whatever the chunking, and no byte is scanned twice.
//!
//! A run of more than [`MAX_GAP`] whitespace bytes (more than the longest whitespace run
//! inside any pattern) ends every partial match. Without that bound, a stream of blanks would
//! make a streaming redactor hold back bytes without limit; with it, what a redactor holds is
//! at most about `longest × (MAX_GAP + 1)` bytes, and no realistic wrapping of an encoding
//! (a line break and an indentation) comes near it.
//!
//! Forms shorter than [`MIN_PATTERN_BYTES`] (after stripping) are not looked for: masking every
//! `on` or `42` would wreck the output and tell little.
//!
//! Not covered, by design: transforms not listed here (encryption, hashing, splitting a value
//! across fields, double encodings such as base64 of hex).

use crate::secrets::SecretValue;
use aho_corasick::automaton::{Automaton as _, StateID};
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, MatchKind};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::collections::VecDeque;
use zeroize::Zeroizing;

/// Forms shorter than this many bytes (whitespace not counted) are not looked for.
pub const MIN_PATTERN_BYTES: usize = 4;
/// The longest run of whitespace that may sit between two characters of a form.
pub const MAX_GAP: usize = 64;

/// Whether `b` is whitespace the matcher skips.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

/// A way an upstream or a program may write a value; [`Form::ALL`] is the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// As it is.
    Raw,
    /// Unicode lower-cased (ASCII case is covered by the matcher for every form).
    Lower,
    /// Unicode upper-cased.
    Upper,
    /// JSON-escaped (serde).
    Json,
    /// JSON-escaped with `/` as `\/` (PHP).
    JsonSlash,
    /// JSON-escaped with `\uXXXX` for `<`, `>`, `&` and non-ASCII (Go, Python).
    JsonAscii,
    /// `\uXXXX` escaping with `\/` too.
    JsonAsciiSlash,
    /// Rust's `{:?}`.
    Debug,
    /// Percent-encoded, RFC 3986 unreserved characters kept.
    PercentUnreserved,
    /// Percent-encoded, alphanumerics kept.
    PercentAlnum,
    /// Every byte percent-encoded.
    PercentAll,
    /// `application/x-www-form-urlencoded` (`+` for space).
    PercentForm,
    /// Hex.
    Hex,
    /// Base64, standard alphabet, at the three alignments.
    Base64,
    /// Base64, URL-safe alphabet, at the three alignments.
    Base64Url,
    /// HTML-escaped (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;`).
    Html,
    /// HTML decimal character references for every character.
    HtmlDecimal,
    /// HTML hex character references for every character.
    HtmlHex,
    /// UTF-16, little-endian.
    Utf16Le,
    /// UTF-16, big-endian.
    Utf16Be,
}

impl Form {
    /// Every form, in the order the docs list them.
    pub const ALL: [Form; 20] = [
        Form::Raw,
        Form::Lower,
        Form::Upper,
        Form::Json,
        Form::JsonSlash,
        Form::JsonAscii,
        Form::JsonAsciiSlash,
        Form::Debug,
        Form::PercentUnreserved,
        Form::PercentAlnum,
        Form::PercentAll,
        Form::PercentForm,
        Form::Hex,
        Form::Base64,
        Form::Base64Url,
        Form::Html,
        Form::HtmlDecimal,
        Form::HtmlHex,
        Form::Utf16Le,
        Form::Utf16Be,
    ];

    /// The patterns this form of `s` gives (base64 gives one per alignment).
    fn patterns(self, s: &str) -> Vec<Zeroizing<Vec<u8>>> {
        use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        let one = |v: Vec<u8>| vec![Zeroizing::new(v)];
        let text = |v: String| vec![Zeroizing::new(v.into_bytes())];
        match self {
            Form::Raw => one(s.as_bytes().to_vec()),
            Form::Lower => text(s.to_lowercase()),
            Form::Upper => text(s.to_uppercase()),
            Form::Json => text(json_inner(s)),
            Form::JsonSlash => text(json_inner(s).replace('/', "\\/")),
            Form::JsonAscii => text(json_ascii(s)),
            Form::JsonAsciiSlash => text(json_ascii(s).replace('/', "\\/")),
            Form::Debug => {
                let debug = Zeroizing::new(format!("{s:?}"));
                one(debug.as_bytes()[1..debug.len() - 1].to_vec())
            }
            Form::PercentUnreserved => {
                text(percent_encoding::utf8_percent_encode(s, URL_KEEP).to_string())
            }
            Form::PercentAlnum => text(
                percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            ),
            Form::PercentAll => {
                let mut out = String::with_capacity(s.len() * 3);
                for b in s.bytes() {
                    out.push_str(&format!("%{b:02x}"));
                }
                text(out)
            }
            Form::PercentForm => text(form_urlencoded::byte_serialize(s.as_bytes()).collect()),
            Form::Hex => text(hex::encode(s.as_bytes())),
            Form::Base64 => base64_inner(&STANDARD_NO_PAD, s.as_bytes()),
            Form::Base64Url => base64_inner(&URL_SAFE_NO_PAD, s.as_bytes()),
            Form::Html => {
                let mut out = String::with_capacity(s.len());
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
                text(out)
            }
            Form::HtmlDecimal => text(s.chars().map(|c| format!("&#{};", c as u32)).collect()),
            Form::HtmlHex => text(s.chars().map(|c| format!("&#x{:x};", c as u32)).collect()),
            Form::Utf16Le => one(s.encode_utf16().flat_map(u16::to_le_bytes).collect()),
            Form::Utf16Be => one(s.encode_utf16().flat_map(u16::to_be_bytes).collect()),
        }
    }
}

/// Bytes kept as they are when percent-encoding (RFC 3986 unreserved).
const URL_KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// serde_json's escaping, without the quotes.
fn json_inner(s: &str) -> String {
    let json = serde_json::to_string(s).unwrap_or_default();
    json.get(1..json.len().saturating_sub(1))
        .unwrap_or_default()
        .to_string()
}

/// JSON string escaping as Go's `encoding/json` (HTML-safe) and Python's `json.dumps`
/// (`ensure_ascii`) write it: `<`, `>`, `&` and every non-ASCII character as `\uXXXX`.
fn json_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' || !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The base64 characters that depend on `raw`'s bytes alone, at each of the three alignments
/// `raw` can have inside a longer encoding.
fn base64_inner(engine: &base64::engine::GeneralPurpose, raw: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut out = Vec::with_capacity(3);
    for pad in 0..3usize {
        let mut input = Zeroizing::new(vec![0u8; pad]);
        input.extend_from_slice(raw);
        let encoded = Zeroizing::new(engine.encode(&*input));
        let first = (8 * pad).div_ceil(6);
        let last = (8 * (pad + raw.len())) / 6;
        if last > first {
            out.push(Zeroizing::new(encoded.as_bytes()[first..last].to_vec()));
        }
    }
    out
}

/// More secret material than the bounds the caller set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("more secret material than masking handles")]
pub struct TooMuch;

/// The patterns of a set of values: every form of each, whitespace removed, lower-cased (the
/// matcher ignores ASCII case), deduplicated, within optional bounds.
#[derive(Default)]
pub struct Patterns {
    list: Vec<Zeroizing<Vec<u8>>>,
    /// The SHA-256 of each pattern: duplicates are left out without a second copy of the
    /// bytes in a set that would not be zeroized.
    seen: std::collections::HashSet<[u8; 32]>,
    bytes: usize,
    /// The longest whitespace run inside a form.
    run: usize,
    /// At most this many patterns and this many pattern bytes.
    bound: Option<(usize, usize)>,
}

impl std::fmt::Debug for Patterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patterns")
            .field("patterns", &self.list.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Patterns {
    /// No bound (a credential's forms: one value, at most 64 KiB).
    pub fn new() -> Patterns {
        Patterns::default()
    }

    /// At most `patterns` patterns and `bytes` pattern bytes; past them, [`TooMuch`].
    pub fn bounded(patterns: usize, bytes: usize) -> Patterns {
        Patterns {
            bound: Some((patterns, bytes)),
            ..Patterns::default()
        }
    }

    /// How many patterns.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Adds every form of `s`.
    pub fn add_text(&mut self, s: &str) -> Result<(), TooMuch> {
        for form in Form::ALL {
            for p in form.patterns(s) {
                self.add(&p)?;
            }
        }
        Ok(())
    }

    /// Adds a secret: every form of its text, and, for a multi-field value or a plain value
    /// holding JSON (a service account's key file, say), of each leaf (strings, and numbers as
    /// they were written).
    pub fn add_secret(&mut self, v: &SecretValue) -> Result<(), TooMuch> {
        let text = v.expose();
        self.add_text(text)?;
        let trimmed = text.trim_start();
        if (v.is_object() || trimmed.starts_with('{') || trimmed.starts_with('['))
            && let Ok(doc) = serde_json::from_str::<serde_json::Value>(text)
        {
            self.add_leaves(&doc)?;
        }
        Ok(())
    }

    fn add_leaves(&mut self, v: &serde_json::Value) -> Result<(), TooMuch> {
        match v {
            serde_json::Value::String(s) => self.add_text(s),
            // With `arbitrary_precision`, a number prints exactly as it was written.
            serde_json::Value::Number(n) => self.add(n.to_string().as_bytes()),
            serde_json::Value::Array(items) => items.iter().try_for_each(|i| self.add_leaves(i)),
            serde_json::Value::Object(map) => map.values().try_for_each(|i| self.add_leaves(i)),
            serde_json::Value::Bool(_) | serde_json::Value::Null => Ok(()),
        }
    }

    /// Adds every pattern of `other`.
    pub fn extend(&mut self, other: &Patterns) -> Result<(), TooMuch> {
        self.run = self.run.max(other.run);
        for p in &other.list {
            self.add(p)?;
        }
        Ok(())
    }

    /// Adds one form.
    fn add(&mut self, form: &[u8]) -> Result<(), TooMuch> {
        let mut run = 0;
        let mut stripped = Zeroizing::new(Vec::with_capacity(form.len()));
        for &b in form {
            if is_space(b) {
                run += 1;
                self.run = self.run.max(run);
            } else {
                run = 0;
                stripped.push(b.to_ascii_lowercase());
            }
        }
        if stripped.len() < MIN_PATTERN_BYTES {
            return Ok(());
        }
        let digest: [u8; 32] = Sha256::digest(&*stripped).into();
        if self.seen.contains(&digest) {
            return Ok(());
        }
        self.bytes += stripped.len();
        if let Some((most, bytes)) = self.bound
            && (self.list.len() >= most || self.bytes > bytes)
        {
            return Err(TooMuch);
        }
        self.seen.insert(digest);
        self.list.push(stripped);
        Ok(())
    }
}

/// Finds the patterns of a [`Patterns`] in a stream (see the module's doc): overlapping
/// occurrences, each as the range of real stream bytes it spans.
pub struct Finder {
    nfa: NFA,
    start: StateID,
    longest: usize,
    gap_limit: usize,
    /// The bytes some pattern begins with (either ASCII case): from the start state, any
    /// other byte leads back to it and is part of no occurrence, so it is passed over without
    /// a step of the automaton or a place in [`Cursor::recent`].
    starts: [bool; 256],
}

impl std::fmt::Debug for Finder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finder")
            .field("longest", &self.longest)
            .finish_non_exhaustive()
    }
}

/// A position in a stream being searched: carried from one chunk to the next, so no byte is
/// read twice however the stream is cut. (The automaton's failure transitions are amortised
/// constant per byte, as in any Aho-Corasick search; [`Cursor::work`] counts bytes read and
/// occurrences reported.)
#[derive(Debug, Clone)]
pub struct Cursor {
    state: StateID,
    /// Whitespace bytes since the last other byte.
    gap: usize,
    /// The stream offsets of the last `longest` non-whitespace bytes.
    recent: VecDeque<u64>,
    /// The offset of the next byte.
    pos: u64,
    /// Steps taken: bytes read plus occurrences reported (what the cost tests count).
    work: u64,
}

impl Cursor {
    /// The offset of the next byte.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Steps taken so far.
    pub fn work(&self) -> u64 {
        self.work
    }
}

impl Finder {
    /// A finder of `patterns`; `None` when there are none.
    pub fn new(patterns: &Patterns) -> Option<Finder> {
        if patterns.list.is_empty() {
            return None;
        }
        let nfa = NFA::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .build(patterns.list.iter().map(|p| p.as_slice()))
            .map_err(|e| tracing::error!(error = %e, "cannot build a secret-form matcher"))
            .ok()?;
        let start = nfa.start_state(Anchored::No).ok()?;
        let mut starts = [false; 256];
        for b in patterns.list.iter().filter_map(|p| p.first()) {
            starts[usize::from(b.to_ascii_lowercase())] = true;
            starts[usize::from(b.to_ascii_uppercase())] = true;
        }
        Some(Finder {
            longest: patterns.list.iter().map(|p| p.len()).max().unwrap_or(1),
            gap_limit: MAX_GAP.max(patterns.run),
            nfa,
            start,
            starts,
        })
    }

    /// The heap memory the automaton holds, in bytes.
    pub fn memory(&self) -> usize {
        self.nfa.memory_usage()
    }

    /// The longest pattern, whitespace not counted.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// The most stream bytes one occurrence can span, whitespace between its characters
    /// included.
    pub fn reach(&self) -> usize {
        self.longest.saturating_mul(self.gap_limit + 1)
    }

    /// A cursor at the start of a stream. (`recent` holds offsets only while a partial
    /// occurrence is in progress; it starts with room for a value's raw form, not the longest
    /// form's, which is several times longer and which few streams hold.)
    pub fn cursor(&self) -> Cursor {
        Cursor {
            state: self.start,
            gap: 0,
            recent: VecDeque::with_capacity(self.longest.min(64)),
            pos: 0,
            work: 0,
        }
    }

    /// Reads `data`, the stream's next bytes, and calls `hit(start, end)` with the stream
    /// offsets of every occurrence that ends in it; stops early when `hit` returns false.
    pub fn scan(&self, c: &mut Cursor, data: &[u8], mut hit: impl FnMut(u64, u64) -> bool) {
        for &b in data {
            let at = c.pos;
            c.pos += 1;
            c.work += 1;
            if is_space(b) {
                c.gap += 1;
                if c.gap > self.gap_limit && !c.recent.is_empty() {
                    c.state = self.start;
                    c.recent.clear();
                }
                continue;
            }
            c.gap = 0;
            if c.state == self.start && !self.starts[usize::from(b)] {
                // Nothing in progress, and nothing begins here: no occurrence holds this byte,
                // nor any before it.
                c.recent.clear();
                continue;
            }
            if c.recent.len() == self.longest {
                c.recent.pop_front();
            }
            c.recent.push_back(at);
            c.state = self.nfa.next_state(Anchored::No, c.state, b);
            if c.state == self.start {
                // Back where nothing is in progress: what was read is final.
                c.recent.clear();
                continue;
            }
            if self.nfa.is_special(c.state) && self.nfa.is_match(c.state) {
                for i in 0..self.nfa.match_len(c.state) {
                    c.work += 1;
                    let len = self.nfa.pattern_len(self.nfa.match_pattern(c.state, i));
                    let Some(&start) = c
                        .recent
                        .len()
                        .checked_sub(len)
                        .and_then(|k| c.recent.get(k))
                    else {
                        continue;
                    };
                    if !hit(start, at + 1) {
                        return;
                    }
                }
            }
        }
    }

    /// The offset before which no later occurrence can start: bytes before it are final.
    pub fn settled(&self, c: &Cursor) -> u64 {
        let keep = self.longest - 1;
        match c.recent.len().checked_sub(keep) {
            _ if keep == 0 => c.pos,
            Some(k) => c.recent.get(k).copied().unwrap_or(c.pos),
            None => c.recent.front().copied().unwrap_or(c.pos),
        }
    }

    /// Whether `hay` holds an occurrence: [`Finder::scan`]'s walk without the offsets (a
    /// header checked allocates nothing).
    pub fn is_match(&self, hay: &[u8]) -> bool {
        let (mut state, mut gap) = (self.start, 0usize);
        for &b in hay {
            if is_space(b) {
                gap += 1;
                if gap > self.gap_limit {
                    state = self.start;
                }
                continue;
            }
            gap = 0;
            if state == self.start && !self.starts[usize::from(b)] {
                continue;
            }
            state = self.nfa.next_state(Anchored::No, state, b);
            if self.nfa.is_special(state) && self.nfa.is_match(state) {
                return true;
            }
        }
        false
    }

    /// `hay` with every occurrence (and each run of overlapping or touching ones) replaced by
    /// `mark` once.
    pub fn replace(&self, hay: &[u8], mark: &[u8]) -> Vec<u8> {
        let mut r = Redacting::new(self, mark);
        r.push(self, hay, true)
    }
}

/// A stream being redacted: what [`Finder::scan`] finds is replaced, bytes that could still
/// be part of an occurrence are held back until they cannot.
pub struct Redacting {
    cursor: Cursor,
    held: VecDeque<u8>,
    /// The stream offset of `held[0]`.
    held_from: u64,
    /// Occurrences not yet passed: sorted, disjoint, not touching.
    spans: VecDeque<(u64, u64)>,
    /// Whether the last byte let out was replaced.
    masking: bool,
    mark: Vec<u8>,
}

/// Counts only: the bytes held back may be the start of a value.
impl std::fmt::Debug for Redacting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redacting")
            .field("pos", &self.cursor.pos)
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl Redacting {
    /// A stream at its start, replacing occurrences by `mark`.
    pub fn new(finder: &Finder, mark: &[u8]) -> Redacting {
        Redacting {
            cursor: finder.cursor(),
            held: VecDeque::new(),
            held_from: 0,
            spans: VecDeque::new(),
            masking: false,
            mark: mark.to_vec(),
        }
    }

    /// Bytes held back.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Steps taken so far (see [`Cursor`]).
    pub fn work(&self) -> u64 {
        self.cursor.work
    }

    /// Takes the stream's next bytes (`end`: and it ends); returns what may be let out now.
    pub fn push(&mut self, finder: &Finder, data: &[u8], end: bool) -> Vec<u8> {
        let spans = &mut self.spans;
        finder.scan(&mut self.cursor, data, |mut s, mut e| {
            while let Some(&(ls, le)) = spans.back()
                && le >= s
            {
                s = s.min(ls);
                e = e.max(le);
                spans.pop_back();
            }
            spans.push_back((s, e));
            true
        });
        self.held.extend(data);
        let upto = if end {
            self.cursor.pos
        } else {
            finder.settled(&self.cursor).max(self.held_from)
        };
        let n = usize::try_from(upto - self.held_from)
            .unwrap_or(usize::MAX)
            .min(self.held.len());
        let last = self.held_from + n as u64;
        let mut out = Vec::with_capacity(n);
        // Run by run, not byte by byte: the bytes between spans are copied whole, each span
        // becomes one mark (one for a span that goes on into the next push, too).
        let mut p = self.held_from;
        while p < last {
            while let Some(&(_, e)) = self.spans.front()
                && e <= p
            {
                self.spans.pop_front();
            }
            match self.spans.front() {
                Some(&(s, e)) if s <= p => {
                    if !self.masking {
                        out.extend_from_slice(&self.mark);
                        self.masking = true;
                    }
                    p = e.min(last);
                }
                next => {
                    self.masking = false;
                    let stop = next.map_or(last, |&(s, _)| s.min(last));
                    let (from, to) = (
                        (p - self.held_from) as usize,
                        (stop - self.held_from) as usize,
                    );
                    copy_range(&self.held, from, to, &mut out);
                    p = stop;
                }
            }
        }
        self.held.drain(..n);
        self.held_from = upto;
        out
    }
}

/// Appends `held[from..to]` to `out`, as at most two slice copies.
fn copy_range(held: &VecDeque<u8>, from: usize, to: usize, out: &mut Vec<u8>) {
    let (a, b) = held.as_slices();
    if from < a.len() {
        out.extend_from_slice(&a[from..to.min(a.len())]);
    }
    if to > a.len() {
        out.extend_from_slice(&b[from.saturating_sub(a.len())..to - a.len()]);
    }
}

#[cfg(test)]
mod tests;
