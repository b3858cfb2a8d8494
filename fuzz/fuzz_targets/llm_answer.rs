//! The LLM's answer: the chat-completions reply and the summary validator (crates/summary).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    plumbline_fuzz::llm_answer(data);
});
