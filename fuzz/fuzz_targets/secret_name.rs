//! Secret-name validation accepts exactly `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}` without `..`, and
//! its errors stay short whatever it is given.
#![no_main]

use edgeward_host::names::SecretName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let expected = !s.is_empty()
        && s.len() <= 128
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !s.contains("..");
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
