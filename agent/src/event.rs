//! Events: what the CRI lines of a container attempt mean once joined.
//!
//! This module owns the positions an event is known by ([`LinePos`],
//! [`Mark`], [`End`]), the [`Event`] itself with its [`Flags`], the one
//! tracker of open `P…F` chains ([`chain`]), and the two pure stages that
//! produce events from lines: [`assemble`] joins the runtime's `P…F` chunks
//! per stream, and [`framing`] applies a delimiter policy (multi-line
//! events, byte delimiters) on top. Nothing here reads a
//! file: `read` feeds lines in and hands the events on to `render`.

pub mod assemble;
pub mod chain;
pub mod framing;

pub use assemble::Assembler;
pub use chain::Chains;

/// Whether events carry the stored CRI lines they came from
/// ([`Event::raw`]): only the `cri` format serves them, and keeping them
/// costs a copy of every chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawLines {
    Keep,
    Drop,
}

use crate::cri::{Nanos, Stream};

/// Where a line sits: the index of its file in the attempt's ordered file set
/// and its byte range (the end includes the `\n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinePos {
    pub file: u32,
    pub start: u64,
    pub end: u64,
}

/// A point between lines: file index and byte offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mark {
    pub(crate) file: u32,
    pub offset: u64,
}

/// The completion position of an event: the end of the line that completed
/// it, and which piece of that line it is (pieces only arise from the
/// `max_event_bytes` cap). Events are emitted in increasing `End` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct End {
    pub at: Mark,
    pub sub: u32,
}

/// Flags carried by an event; all false for an ordinary one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// A `P` chain that never got its `F` (the attempt ended mid-line).
    pub(crate) partial: bool,
    /// One piece of an event larger than `max_event_bytes`.
    pub(crate) truncated: bool,
    /// The line is not valid CRI; `content` is the whole line.
    pub(crate) malformed: bool,
}

/// One assembled event.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    /// Time of the event's first line; for a malformed line, the time of the
    /// last valid line before it, if any.
    pub time: Option<Nanos>,
    /// `None` for a malformed line.
    pub stream: Option<Stream>,
    pub content: &'a [u8],
    /// The stored lines that make up the event, each with its `\n`; only
    /// filled when the assembler keeps raw lines. A piece of a truncated
    /// event carries the lines finished before it; the last piece the rest.
    pub raw: &'a [u8],
    pub flags: Flags,
    pub end: End,
    /// Where reading must restart to rebuild every event after this one: the
    /// head of the oldest chain still open, or the end of this event's line.
    pub restart: Mark,
    /// Where the event's first stored line starts.
    pub head: Mark,
    /// Where the event's last stored line ends. The end of the line that
    /// completed it (`end.at`), except for a multi-line event that the next
    /// event's first line completed: that line is not part of it.
    pub tail: Mark,
    /// Per stream (stdout, stderr): where the oldest event still unfinished
    /// once this one is delivered begins; `None` when nothing is open.
    pub open: [Option<Mark>; 2],
    /// Cut by a delimiter policy ([`crate::event::framing`]): resuming after this
    /// event needs `open`, not only `restart`.
    pub framed: bool,
}

/// Piece numbers of the events [`Assembler::finish`] flushes: above any piece
/// number a line can produce, so they sort after the last line's events.
pub(crate) const FINISH_SUB: u32 = u32::MAX - 1;

/// Default cap on an event's content, in bytes (1 MiB).
pub(crate) const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;
