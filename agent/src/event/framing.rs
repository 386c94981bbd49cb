//! Delimiter policies: a container's lines cut into events by content.
//!
//! The [`Assembler`](crate::event::Assembler) joins the runtime's `P…F`
//! records into lines; with the default `newline` delimiter each line is an
//! event. A policy may instead cut each stream at a byte sequence
//! (`{bytes: "..."}`), or join lines into multi-line events that begin at a
//! line matching a pattern (`{multiline: {start, maxLines, flushAfter}}`,
//! for stack traces). The [`Framer`] does that, per stream, with the lines
//! the assembler completes.
//!
//! A replay must cut the same events as the first read: a cursor resumes by
//! reading again from where the oldest open event began and skipping what
//! was delivered, and a follower's timer must agree with a later historic
//! read. So every rule depends on the stored lines only:
//!
//! - `flushAfter` compares CRI timestamps: a multi-line event ends when a
//!   line of the container (either stream) is stamped more than `flushAfter`
//!   after the event's last line. A follower applies the same rule to the
//!   clock, less [`GRACE`] for lines stamped but not yet written, when no
//!   line comes.
//! - Completion positions are local to a line L: the event that L ends (by
//!   its pattern, or the size cap) is piece 0 at L; events L completes
//!   itself are pieces 1…. Events ended by a pause complete at the end of
//!   the line before the pause, as piece [`TIMEOUT_SUB`] + stream; those
//!   flushed when the attempt ends as pieces from [`FINISH_BASE`].
//! - Each event says, per stream, where the oldest event still open begins
//!   ([`Event::open`]); a cursor carries that, and the replay skips each
//!   stream's lines before it ([`Start::Skip`]).
//!
//! Read from anywhere else (a `tailLines` window, `sinceTime`), a stream's
//! state is unknown ([`Start::Unknown`]): its lines are dropped until one
//! that begins an event whatever came before it (a `start` match, a pause,
//! a delimiter).

use podlog_policy::Delimiter;
use regex::bytes::Regex;

use crate::cri::{Nanos, Stream};
use crate::event::{End, Event, Flags, Mark, RawLines, FINISH_SUB};

/// Piece numbers of events ended by a pause: `TIMEOUT_SUB + stream`.
pub(crate) const TIMEOUT_SUB: u32 = FINISH_BASE - 2;
/// Piece numbers of events flushed when the attempt ends: from
/// `FINISH_BASE + stream × FINISH_SPAN`, the stream's open event last.
pub(crate) const FINISH_BASE: u32 = u32::MAX - 2 * FINISH_SPAN - 2;
/// Piece numbers per stream at the end of the attempt.
const FINISH_SPAN: u32 = 1 << 20;
/// How long after a multi-line event's deadline a follower waits before it
/// flushes the event: a line stamped before the deadline is in the file by
/// then.
pub(crate) const GRACE: Nanos = 200_000_000;

/// How lines are cut into events, when not one per line.
#[derive(Clone, Debug)]
pub enum Framing {
    /// Events end at this byte sequence in the stream's content (lines
    /// joined by `\n`); the delimiter and the `\n` around it are dropped.
    Bytes(Vec<u8>),
    /// Events begin at a line matching `start`.
    Multiline {
        start: Regex,
        max_lines: u32,
        flush_after: Nanos,
    },
}

impl Framing {
    /// The framing of a policy's delimiter; `None` for `newline`.
    pub(crate) fn from_policy(d: &Delimiter) -> Option<Self> {
        match d {
            Delimiter::Newline => None,
            Delimiter::Bytes(s) => Some(Framing::Bytes(s.as_bytes().to_vec())),
            Delimiter::Multiline(m) => Some(Framing::Multiline {
                start: m.start.regex().clone(),
                max_lines: m.max_lines.max(1),
                flush_after: i64::try_from(m.flush_after.as_nanos()).unwrap_or(i64::MAX),
            }),
        }
    }
}

/// What the framer knows of the point where reading starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// Nothing is open there (the start of the attempt).
    Fresh,
    /// Anything may be open: each stream's lines are dropped until one that
    /// surely begins an event.
    Unknown,
    /// A cursor's restart point: per stream, the lines that start before
    /// this mark belong to delivered events.
    Skip([Mark; 2]),
}

/// One stream's event being built.
#[derive(Default)]
struct Group {
    open: bool,
    /// The stream's state is unknown: its lines are dropped.
    dropping: bool,
    head: Mark,
    /// Where its last line ends.
    tail: Mark,
    time: Nanos,
    /// Time of the last line (also of a dropped one, for the pause rule).
    last_time: Option<Nanos>,
    content: Vec<u8>,
    raw: Vec<u8>,
    lines: u32,
    flags: Flags,
}

/// Cuts lines into events by a [`Framing`]; see the module docs.
pub(crate) struct Framer {
    framing: Framing,
    max: usize,
    keep_raw: bool,
    groups: [Group; 2],
    skip: Option<[Mark; 2]>,
    dropped_end: Option<Mark>,
    prev_end: Option<Mark>,
}

/// Buffers larger than this are released after their event.
const KEEP_CAPACITY: usize = 64 << 10;

fn stream_of(s: usize) -> Stream {
    if s == 0 {
        Stream::Stdout
    } else {
        Stream::Stderr
    }
}

fn min_mark(a: Option<Mark>, b: Option<Mark>) -> Option<Mark> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

// === impl Framer ===

impl Framer {
    pub(crate) fn new(framing: Framing, max_event_bytes: usize, raw: RawLines) -> Self {
        Self {
            framing,
            max: max_event_bytes.max(1),
            keep_raw: raw == RawLines::Keep,
            groups: Default::default(),
            skip: None,
            dropped_end: None,
            prev_end: None,
        }
    }

    /// Says what is known of the point where reading starts.
    pub(crate) fn set_start(&mut self, start: Start) {
        self.skip = None;
        for g in &mut self.groups {
            g.dropping = false;
        }
        match start {
            Start::Fresh => {}
            Start::Unknown => {
                for g in &mut self.groups {
                    g.dropping = true;
                }
            }
            Start::Skip(m) => self.skip = Some(m),
        }
    }

    /// The end of the last line dropped while a stream's state was unknown.
    pub(crate) fn dropped_end(&self) -> Option<Mark> {
        self.dropped_end
    }

    /// The head of the oldest open event.
    pub(crate) fn oldest_open_head(&self) -> Option<Mark> {
        self.groups.iter().filter(|g| g.open).map(|g| g.head).min()
    }

    /// True while an event that began before `until` is open.
    pub(crate) fn has_open_before(&self, until: Nanos) -> bool {
        self.groups.iter().any(|g| g.open && g.time < until)
    }

    /// When the first open multi-line event (in stream order) times out, in
    /// CRI time: the next flush a follower must wake for.
    pub(crate) fn deadline(&self) -> Option<Nanos> {
        let Framing::Multiline { flush_after, .. } = self.framing else {
            return None;
        };
        self.groups
            .iter()
            .find(|g| g.open)
            .and_then(|g| g.last_time)
            .map(|t| t.saturating_add(flush_after))
    }

    /// Drops what is open (the file was truncated under the reader).
    pub(crate) fn reset(&mut self) {
        for g in &mut self.groups {
            g.open = false;
            g.dropping = false;
            g.content.clear();
            g.raw.clear();
        }
    }

    /// Before a line of `stream` (`None`: malformed) stamped `time` that
    /// starts at `start`: applies the pause rule. False when the line was
    /// delivered before a cursor and must be skipped.
    pub(crate) fn before_line<F: FnMut(&Event<'_>)>(
        &mut self,
        stream: Option<Stream>,
        time: Option<Nanos>,
        start: Mark,
        chains: [Option<Mark>; 2],
        emit: &mut F,
    ) -> bool {
        if let (Some(st), Some(skip)) = (stream, self.skip) {
            if start < skip[st.index()] {
                return false;
            }
        }
        if let (Some(t), Some(at)) = (time, self.prev_end) {
            self.pause(t, at, chains, Paused::ByLine, emit);
        }
        true
    }

    /// After a line (skipped or not) that ends at `end`.
    pub(crate) fn after_line(&mut self, end: Mark) {
        self.prev_end = Some(end);
    }

    /// A follower's timer: ends the multi-line events whose pause is
    /// certain at `now` (CRI time, grace already subtracted).
    pub(crate) fn expire<F: FnMut(&Event<'_>)>(
        &mut self,
        now: Nanos,
        chains: [Option<Mark>; 2],
        emit: &mut F,
    ) {
        if let Some(at) = self.prev_end {
            self.pause(now, at, chains, Paused::ByTimer, emit);
        }
    }

    /// Ends the multi-line events whose last line is more than
    /// `flushAfter` before `now`, completing at `at`. A timer ([`Paused::ByTimer`])
    /// goes in stream order and stops at an open event not yet due, so
    /// events completing at one point are delivered in piece order.
    fn pause<F: FnMut(&Event<'_>)>(
        &mut self,
        now: Nanos,
        at: Mark,
        chains: [Option<Mark>; 2],
        by: Paused,
        emit: &mut F,
    ) {
        let Framing::Multiline { flush_after, .. } = self.framing else {
            return;
        };
        for s in 0..2 {
            let g = &mut self.groups[s];
            let due = g
                .last_time
                .is_some_and(|t| now > t.saturating_add(flush_after));
            if !due {
                if by == Paused::ByTimer && g.open {
                    break;
                }
                continue;
            }
            if g.dropping {
                // A pause: the next line begins an event.
                g.dropping = false;
                g.last_time = None;
                continue;
            }
            if g.open {
                let end = End {
                    at,
                    sub: TIMEOUT_SUB + s as u32,
                };
                self.close(s, end, chains, None, emit);
            }
        }
    }

    /// The open heads per stream once `s`… are closed: the assembler's
    /// chains, the open events, and a line about to open one.
    fn heads(
        &self,
        chains: [Option<Mark>; 2],
        pending: Option<(usize, Mark)>,
    ) -> [Option<Mark>; 2] {
        [0, 1].map(|i| {
            let g = &self.groups[i];
            let mut h = chains[i];
            if g.open {
                h = min_mark(h, Some(g.head));
            }
            if let Some((ps, m)) = pending {
                if ps == i {
                    h = min_mark(h, Some(m));
                }
            }
            h
        })
    }

    fn restart(open: &[Option<Mark>; 2], at: Mark) -> Mark {
        open.iter().flatten().copied().fold(at, Mark::min)
    }

    /// Emits the open event of stream `s` as completing at `end`.
    fn close<F: FnMut(&Event<'_>)>(
        &mut self,
        s: usize,
        end: End,
        chains: [Option<Mark>; 2],
        pending: Option<(usize, Mark)>,
        emit: &mut F,
    ) {
        if !self.groups[s].open {
            return;
        }
        self.groups[s].open = false;
        let open = self.heads(chains, pending);
        let len = self.groups[s].content.len();
        self.deliver(s, 0..len, end, open, emit);
        let g = &mut self.groups[s];
        g.content.clear();
        g.raw.clear();
        if g.content.capacity() > KEEP_CAPACITY {
            g.content = Vec::new();
        }
        if g.raw.capacity() > KEEP_CAPACITY {
            g.raw = Vec::new();
        }
    }

    /// Delivers `content[range]` of stream `s`'s event as completing at
    /// `end`, with the open heads `open`; while the stream's state is
    /// unknown, drops it instead. A `bytes` event never ends with the `\n`
    /// that joined its lines.
    fn deliver<F: FnMut(&Event<'_>)>(
        &mut self,
        s: usize,
        range: std::ops::Range<usize>,
        end: End,
        open: [Option<Mark>; 2],
        emit: &mut F,
    ) {
        let g = &self.groups[s];
        if g.dropping {
            self.dropped_end = Some(end.at);
            return;
        }
        let mut content = &g.content[range];
        if matches!(self.framing, Framing::Bytes(_)) {
            content = content.strip_suffix(b"\n").unwrap_or(content);
        }
        emit(&Event {
            time: Some(g.time),
            stream: Some(stream_of(s)),
            content,
            raw: &g.raw,
            flags: g.flags,
            end,
            restart: Self::restart(&open, end.at),
            head: g.head,
            tail: g.tail,
            open,
            framed: true,
        });
    }

    /// Passes an event of the assembler through (a malformed line, a piece
    /// of an over-long line) with the framer's open heads.
    fn pass<F: FnMut(&Event<'_>)>(&self, ev: &Event<'_>, end: End, emit: &mut F) {
        let open = self.heads(ev.open, None);
        emit(&Event {
            end,
            restart: Self::restart(&open, end.at),
            open,
            framed: true,
            ..*ev
        });
    }

    /// Takes an event of the assembler: a line, a malformed line, or a
    /// piece of a line longer than the cap.
    pub(crate) fn event<F: FnMut(&Event<'_>)>(&mut self, ev: &Event<'_>, emit: &mut F) {
        let Some(stream) = ev.stream else {
            self.pass(ev, ev.end, emit);
            return;
        };
        let s = stream.index();
        let at = ev.end.at;
        let fin = ev.end.sub >= FINISH_SUB;
        let base = if fin {
            FINISH_BASE + FINISH_SPAN * s as u32
        } else {
            0
        };
        if ev.flags.truncated {
            // A line over the cap: its pieces are events of their own, and
            // whatever was open in its stream ends before them.
            self.groups[s].dropping = false;
            self.close(s, End { at, sub: base }, ev.open, None, emit);
            let k = if fin { 0 } else { ev.end.sub };
            self.pass(
                ev,
                End {
                    at,
                    sub: base + 1 + k,
                },
                emit,
            );
            return;
        }
        match &self.framing {
            Framing::Multiline { .. } => self.multiline(s, ev, base, emit),
            Framing::Bytes(_) => self.bytes(s, ev, base, emit),
        }
    }

    fn multiline<F: FnMut(&Event<'_>)>(
        &mut self,
        s: usize,
        ev: &Event<'_>,
        base: u32,
        emit: &mut F,
    ) {
        let Framing::Multiline {
            start, max_lines, ..
        } = &self.framing
        else {
            return;
        };
        let max_lines = *max_lines;
        let at = ev.end.at;
        let time = ev.time.unwrap_or_default();
        let starts = start.is_match(ev.content);
        let g = &mut self.groups[s];
        if g.dropping {
            if !starts {
                g.last_time = Some(time);
                self.dropped_end = Some(at);
                return;
            }
            g.dropping = false;
        }
        if g.open {
            let over = g.content.len() + 1 + ev.content.len() > self.max;
            if starts || over {
                // Cut for size: the part delivered says so. (The rest is
                // not flagged: a replay from its first line could not know.)
                g.flags.truncated |= over && !starts;
                let end = End { at, sub: base };
                self.close(s, end, ev.open, Some((s, ev.head)), emit);
                self.open_with(s, ev, time);
            } else {
                let keep_raw = self.keep_raw;
                g.content.push(b'\n');
                g.content.extend_from_slice(ev.content);
                if keep_raw {
                    g.raw.extend_from_slice(ev.raw);
                }
                g.lines += 1;
                g.tail = at;
                g.last_time = Some(time);
                g.flags.partial |= ev.flags.partial;
            }
        } else {
            self.open_with(s, ev, time);
        }
        if self.groups[s].lines >= max_lines {
            self.close(s, End { at, sub: base + 1 }, ev.open, None, emit);
        }
    }

    /// Opens stream `s`'s event with the line `ev`.
    fn open_with(&mut self, s: usize, ev: &Event<'_>, time: Nanos) {
        let keep_raw = self.keep_raw;
        let g = &mut self.groups[s];
        g.open = true;
        g.head = ev.head;
        g.tail = ev.end.at;
        g.time = time;
        g.last_time = Some(time);
        g.content.clear();
        g.content.extend_from_slice(ev.content);
        g.raw.clear();
        if keep_raw {
            g.raw.extend_from_slice(ev.raw);
        }
        g.lines = 1;
        g.flags = Flags {
            partial: ev.flags.partial,
            ..Flags::default()
        };
    }

    fn bytes<F: FnMut(&Event<'_>)>(&mut self, s: usize, ev: &Event<'_>, base: u32, emit: &mut F) {
        let Framing::Bytes(delim) = &self.framing else {
            return;
        };
        let dlen = delim.len();
        let at = ev.end.at;
        let time = ev.time.unwrap_or_default();
        let keep_raw = self.keep_raw;
        let max = self.max;
        let g = &mut self.groups[s];
        if !g.open {
            g.open = true;
            g.head = ev.head;
            g.time = time;
            g.content.clear();
            g.raw.clear();
            g.flags = Flags::default();
        }
        // Search from just before what this line adds: a delimiter may
        // span the joining `\n`.
        let search = g.content.len().saturating_sub(dlen - 1);
        g.content.extend_from_slice(ev.content);
        g.content.push(b'\n');
        g.tail = at;
        g.last_time = Some(time);
        g.flags.partial |= ev.flags.partial;
        let (mut cuts, mut from) = delimited(&g.content, search, delim);
        if cuts.first().is_some_and(|&(a, b)| b - a > max) {
            // The event this line ends is over the cap: what came before
            // the line goes out alone, flagged truncated, and the line
            // starts the event anew (a delimiter spanning the join is lost
            // with the cut). Its `sub` is the line's `base`, below the
            // line's own cuts, which are numbered as a replay from this
            // line numbers them.
            self.cut_before_line(s, ev, End { at, sub: base }, emit);
            let Framing::Bytes(delim) = &self.framing else {
                return;
            };
            (cuts, from) = delimited(&self.groups[s].content, 0, delim);
        }
        let g = &mut self.groups[s];
        let rest_empty = from == g.content.len();
        let n = cuts.len();
        let mut sub = base + 1;
        for (k, (a, b)) in cuts.into_iter().enumerate() {
            let closes = k + 1 == n && rest_empty;
            let g = &mut self.groups[s];
            if closes {
                if keep_raw {
                    g.raw.extend_from_slice(ev.raw);
                }
                g.open = false;
            }
            let pending = (!closes).then_some((s, ev.head));
            let open = self.heads(ev.open, pending);
            // The first cut of a stream whose state is unknown is dropped.
            self.deliver(s, a..b, End { at, sub }, open, emit);
            self.groups[s].dropping = false;
            sub = sub
                .saturating_add(1)
                .min(base.saturating_add(FINISH_SPAN - 2));
            let g = &mut self.groups[s];
            g.raw.clear();
            g.flags = Flags::default();
            // What follows the delimiter begins in this line.
            g.head = ev.head;
            g.time = time;
        }
        let g = &mut self.groups[s];
        if rest_empty {
            g.open = false;
            g.content.clear();
            return;
        }
        g.content.drain(..from);
        if n == 0 && g.content.len() > max {
            self.cut_before_line(s, ev, End { at, sub }, emit);
        }
        if keep_raw {
            self.groups[s].raw.extend_from_slice(ev.raw);
        }
    }

    /// No delimiter for too long: what came before line `ev` is delivered
    /// as a piece flagged truncated, and the event goes on from that line
    /// (where a replay can pick it up).
    fn cut_before_line<F: FnMut(&Event<'_>)>(
        &mut self,
        s: usize,
        ev: &Event<'_>,
        end: End,
        emit: &mut F,
    ) {
        let line_len = ev.content.len() + 1;
        let g = &mut self.groups[s];
        if g.content.len() <= line_len {
            return;
        }
        let cut = g.content.len() - line_len;
        g.flags.truncated = true;
        let open = self.heads(ev.open, Some((s, ev.head)));
        self.deliver(s, 0..cut, end, open, emit);
        let g = &mut self.groups[s];
        g.content.drain(..cut);
        g.raw.clear();
        g.head = ev.head;
        g.time = ev.time.unwrap_or_default();
        g.flags = Flags::default();
    }

    /// The attempt ended at `at`: flushes stream `s`'s open event (after
    /// its last line, if that had no end, went through [`Framer::event`]).
    pub(crate) fn finish<F: FnMut(&Event<'_>)>(
        &mut self,
        s: usize,
        at: Mark,
        chains: [Option<Mark>; 2],
        emit: &mut F,
    ) {
        let end = End {
            at,
            sub: FINISH_BASE + FINISH_SPAN * (s as u32 + 1) - 1,
        };
        if !self.groups[s].dropping {
            self.close(s, end, chains, None, emit);
        }
    }
}

/// The events `delim` ends in `content`, searching from `search`: their
/// ranges (without the delimiter), and where the rest begins (past the
/// last delimiter and the `\n` joining the next line, if any).
fn delimited(content: &[u8], mut search: usize, delim: &[u8]) -> (Vec<(usize, usize)>, usize) {
    let mut cuts = Vec::new();
    let mut from = 0;
    while let Some(i) = memchr::memmem::find(&content[search..], delim) {
        let i = search + i;
        cuts.push((from, i));
        from = i + delim.len();
        if content.get(from) == Some(&b'\n') {
            from += 1;
        }
        search = from;
    }
    (cuts, from)
}

/// What found a multi-line event paused: the next line's time, or a
/// follower's timer (which stops at an open event not yet due, so events
/// completing at one point are delivered in piece order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Paused {
    ByLine,
    ByTimer,
}

#[cfg(test)]
mod tests;
