//! The OTLP traces receiver (`/v1/traces`: OTLP/JSON or protobuf by the delivery's
//! `content-type`, GenAI `execute_tool` spans) over deliveries in the format of `plumbline_fuzz::deliveries`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plumbline_fuzz::adapter_at("otlp-traces", data);
});
