//! The policy file loader and validator (crates/policy/src/model.rs), then a decision.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plumbline_fuzz::policy(data);
});
