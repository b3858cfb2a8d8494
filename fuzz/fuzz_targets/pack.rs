//! The pack archive reader and the manifest parser (crates/pack).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plumbline_fuzz::pack(data);
});
