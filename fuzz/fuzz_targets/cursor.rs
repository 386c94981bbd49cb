//! `podlog_agent::fuzzing::cursor` on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| podlog_agent::fuzzing::cursor(data));
