//! The okta adapter's mapping (`Adapter::map`, with verification and in-memory adapter
//! memory) over deliveries in the format of `plumbline_fuzz::deliveries`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plumbline_fuzz::adapter(plumbline_event::Source::Okta, data);
});
