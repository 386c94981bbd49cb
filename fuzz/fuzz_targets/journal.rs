//! `podlog_agent::fuzzing::journal` on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| podlog_agent::fuzzing::journal(data));
