//! The OTLP logs receiver (`/v1/logs`: OTLP/JSON or protobuf by the delivery's
//! `content-type`, Claude Code's and Codex's events) over deliveries in the format of `plumbline_fuzz::deliveries`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plumbline_fuzz::adapter_at("otlp-logs", data);
});
