//! The native event bodies (JSON, array, NDJSON: crates/ingest/src/body.rs) and the NDJSON line reader of the Vault adapter (crates/ingest/src/map.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plumbline_fuzz::native_body(data);
});
