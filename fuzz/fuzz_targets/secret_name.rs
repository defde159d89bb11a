//! Secret-name validation accepts exactly `/`-separated segments of
//! `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`, 255 bytes in all, without `..`, and its errors stay
//! short whatever it is given.
#![no_main]

use edgeward_host::names::SecretName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let expected = !s.is_empty()
        && s.len() <= 255
        && !s.contains("..")
        && s.split('/').all(|seg| {
            seg.len() <= 128
                && seg.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        });
    match SecretName::parse(s) {
        Ok(name) => {
            assert!(expected, "accepted {s:?}");
            assert_eq!(name.as_str(), s);
        }
        Err(e) => {
            assert!(!expected, "refused {s:?}");
            assert!(e.0.len() < 400, "an error as long as its input");
        }
    }
});
