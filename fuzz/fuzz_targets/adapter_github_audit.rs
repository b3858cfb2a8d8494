//! The GitHub audit-log adapter's mapping (`/v1/ingest/github-audit`: one entry, an array
//! or NDJSON, with verification and in-memory adapter memory) over deliveries in the format
//! of `plumbline_fuzz::deliveries`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plumbline_fuzz::adapter_at("github-audit", data);
});
