//! `secrets.json` import validation never panics, and what it accepts is all valid.
#![no_main]

use edgeward_host::names::SecretName;
use edgeward_host::secrets::{MAX_IMPORT, MAX_VALUE_BYTES, parse_import};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(entries) = parse_import(&doc) {
        assert!(entries.len() <= MAX_IMPORT);
        for (name, value) in entries {
            assert!(SecretName::parse(name.as_str()).is_ok());
            assert!(value.expose().len() <= MAX_VALUE_BYTES);
        }
    }
});
