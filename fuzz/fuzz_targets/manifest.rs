//! Manifest parsing never panics, and an accepted manifest survives its own normalised form.
#![no_main]

use edgeward_host::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::parse(data) {
        let again = Manifest::parse(manifest.to_json().as_bytes())
            .expect("a manifest's normalised JSON parses");
        assert_eq!(manifest, again);
        let _ = manifest.env_bindings().expect("validated bindings parse");
    }
});
