//! Cursor's hook endpoint (`/v1/ingest/cursor`: the mapping, the hook token and the hook
//! answer) over deliveries in the format of `plumbline_fuzz::deliveries`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plumbline_fuzz::adapter_at("cursor", data);
});
