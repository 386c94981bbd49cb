//! `podlog_agent::fuzzing::cri_line` on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| podlog_agent::fuzzing::cri_line(data));
