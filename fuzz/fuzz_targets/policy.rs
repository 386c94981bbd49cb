//! `podlog_agent::fuzzing::policy` on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| podlog_agent::fuzzing::policy(data));
