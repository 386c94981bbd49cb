//! `podlog_agent::fuzzing::assemble` on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| podlog_agent::fuzzing::assemble(data));
