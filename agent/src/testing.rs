//! Inner types that the integration tests (`agent/tests`), the benchmarks
//! (`agent/benches`) and the end-to-end suite (`e2e/`) drive directly: the
//! lifecycle executor with its fault points and journal, the reader, the
//! event assembler, cursors and rendering. Not an API: it changes with the
//! code it re-exports.

pub use crate::cursor::{Cursor, FilePoint};
pub use crate::event::{Assembler, End, Event, Flags, LinePos, Mark, RawLines};
pub use crate::fs::fileset::{group as group_files, open_log};
pub use crate::fs::safe_open::{has_writer, ignore_lease_breaks, SafeRoot};
pub use crate::fs::ContainerKey;
pub use crate::lifecycle::fault::PANIC_ENV;
pub use crate::lifecycle::journal::{Intent, Journal, Phase};
pub use crate::lifecycle::{
    Executor, Fault, FaultPoints, LifecycleError, Recovered, ReopenError, Reopener,
    RuntimeReopener, Undo, FAULT_ENV,
};
pub use crate::node::runtime::{self, connect, Runtime};
pub use crate::read::{ReadSpec, Session, Sink, Target, Waiter, Wake};
pub use crate::render::{render, Context, Format};

/// `plain` compressed as podlog's lifecycle compresses a rotated file
/// (pieces and their index), with the codec of extension `ext` (`.gz` or
/// `.zst`).
///
/// # Panics
///
/// `ext` is no codec's extension.
pub fn compress_like_podlog(ext: &str, plain: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let (_, codec) = crate::fs::fileset::Codec::strip(ext).expect("a codec's extension");
    let mut w = crate::fs::compressed::PieceWriter::new(codec, Vec::new()).expect("an encoder");
    w.write_all(plain).expect("writes to memory");
    w.finish().expect("writes to memory")
}
