//! Masking secret values out of captured output before it is stored.
//!
//! Every value an execution obtained (through `reveal`, or bound into its environment) is
//! replaced by `***`: the whole value, and for multi-field secrets each field's value too.
//! Output is masked as a whole after the execution, so a value written across several writes
//! is caught; when output was cut at the cap, a value's beginning left at the very end is
//! masked as well.

use crate::secrets::SecretValue;

const MASK: &[u8] = b"***";

/// The byte strings to mask for `values`, longest first.
fn needles(values: &[SecretValue]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for v in values {
        let text = v.expose();
        if !text.is_empty() {
            out.push(text.as_bytes().to_vec());
        }
        if v.is_object()
            && let Ok(serde_json::Value::Object(map)) = serde_json::from_str(text)
        {
            for field in map.values() {
                let leaf = match field {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => continue,
                    other => other.to_string(),
                };
                if !leaf.is_empty() {
                    out.push(leaf.into_bytes());
                }
            }
        }
    }
    out.sort_by_key(|n| std::cmp::Reverse(n.len()));
    out.dedup();
    out
}

/// `output` with every occurrence of every value replaced by `***`.
pub fn mask(output: &[u8], values: &[SecretValue], truncated: bool) -> Vec<u8> {
    if values.is_empty() || output.is_empty() {
        return output.to_vec();
    }
    let needles = needles(values);
    let mut current = output.to_vec();
    for needle in &needles {
        current = replace_all(&current, needle);
    }
    if truncated {
        // A value cut off by the cap: mask its beginning at the very end.
        for needle in &needles {
            let longest = (1..needle.len())
                .rev()
                .find(|&n| current.ends_with(&needle[..n]));
            if let Some(n) = longest {
                current.truncate(current.len() - n);
                current.extend_from_slice(MASK);
                break;
            }
        }
    }
    current
}

fn replace_all(haystack: &[u8], needle: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if haystack[i..].starts_with(needle) {
            out.extend_from_slice(MASK);
            i += needle.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_values_fields_and_cut_tails() {
        let values = [
            SecretValue::text("hunter2".into()),
            SecretValue::object(r#"{"user":"bob","password":"pw-123"}"#.into()),
        ];
        let out = mask(b"a hunter2 b hunter2hunter2 pw-123 bob", &values, false);
        assert_eq!(out, b"a *** b ****** *** ***");
        // Cut at the cap in the middle of a value.
        let out = mask(b"log: hunt", &values, true);
        assert_eq!(out, b"log: ***");
        // Not cut: a mere prefix is left alone.
        assert_eq!(mask(b"log: hunt", &values, false), b"log: hunt");
        assert_eq!(mask(b"nothing", &[], true), b"nothing");
    }
}
