//! Claude Code's hook endpoint (`/v1/ingest/claude-code`: the mapping, the hook token, the
//! permission-mode memory and the hook answer) over deliveries in the format of `plumbline_fuzz::deliveries`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plumbline_fuzz::adapter_at("claude-code", data);
});
