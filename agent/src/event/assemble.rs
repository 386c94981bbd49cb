//! Event assembly: CRI lines in, whole events out.
//!
//! The runtime splits a long line into `P` chunks ended by an `F` chunk, and
//! stdout and stderr chunks interleave, so partial content is merged per
//! stream. An event is emitted when its `F` line arrives; its *completion
//! position* (the end of that line, plus a piece number) orders events and is
//! what a cursor names. An event larger than `max_event_bytes` is delivered
//! as several pieces flagged `truncated`. A line that is not valid CRI becomes
//! an event of its own flagged `malformed`.
//!
//! The assembler is pure: it is fed line slices and their positions by
//! [`crate::read`], which owns the files. Events borrow either the line or
//! the assembler's buffer and are handed to a callback, so a single-line event
//! is never copied.

use super::chain::Chains;
use super::framing::{Framer, Framing, Start};
use super::{End, Event, Flags, LinePos, Mark, RawLines, FINISH_SUB};
use crate::cri::{self, CriLine, Nanos, Stream, Tag};

/// What an open chain has gathered so far.
#[derive(Default)]
struct Gathered {
    time: Nanos,
    content: Vec<u8>,
    raw: Vec<u8>,
    /// Pieces already delivered (the chain outgrew `max_event_bytes`).
    pieces: u32,
}

const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

/// Joins CRI lines into events; see the module docs.
pub struct Assembler {
    max_event_bytes: usize,
    keep_raw: bool,
    chains: Chains<Mark>,
    gathered: [Gathered; 2],
    synced: [bool; 2],
    last_time: Option<Nanos>,
    dropped_end: Option<Mark>,
    /// The delimiter policy's framer, if it is not `newline`.
    framer: Option<Box<Framer>>,
}

/// Chain buffers larger than this are released after their event.
const KEEP_CAPACITY: usize = 64 << 10;

// === impl Assembler ===

impl Assembler {
    /// An assembler for reading from a point where no chain is open (the
    /// start of the attempt, or a cursor's restart mark); see
    /// [`Assembler::set_synced`] for other points.
    pub fn new(max_event_bytes: usize, raw: RawLines) -> Self {
        Self {
            max_event_bytes: max_event_bytes.max(1),
            keep_raw: raw == RawLines::Keep,
            chains: Chains::default(),
            gathered: Default::default(),
            synced: [true; 2],
            last_time: None,
            dropped_end: None,
            framer: None,
        }
    }

    /// Cuts lines into events by `framing` (a delimiter policy other than
    /// `newline`), knowing `start` of where reading starts.
    pub(crate) fn with_framing(mut self, framing: Option<Framing>, start: Start) -> Self {
        self.framer = framing.map(|f| {
            let mut fr = Framer::new(f, self.max_event_bytes, self.raw());
            fr.set_start(start);
            Box::new(fr)
        });
        self
    }

    fn raw(&self) -> RawLines {
        if self.keep_raw {
            RawLines::Keep
        } else {
            RawLines::Drop
        }
    }

    /// With a multi-line policy: when (CRI time) the next open event is due
    /// to be flushed if no line comes.
    pub(crate) fn deadline(&self) -> Option<Nanos> {
        self.framer.as_ref().and_then(|f| f.deadline())
    }

    /// A follower's timer: flushes the multi-line events due at `now`
    /// (CRI time, [`crate::event::framing::GRACE`] already subtracted).
    pub(crate) fn expire<F: FnMut(&Event<'_>)>(&mut self, now: Nanos, emit: &mut F) {
        let chains = self.open_heads();
        if let Some(fr) = &mut self.framer {
            fr.expire(now, chains, emit);
        }
    }

    /// True while an event that may still be delivered before `until` is
    /// open: a chain, or a multi-line event that began before it.
    pub(crate) fn has_open_before(&self, until: Nanos) -> bool {
        self.has_open_chain()
            || self
                .framer
                .as_ref()
                .is_some_and(|f| f.has_open_before(until))
    }

    /// Sets, per stream (stdout, stderr), whether reading starts outside
    /// any chain of that stream. Where it does not, the stream's lines up
    /// to and including its first `F` are dropped, since their chain may
    /// have begun before the start point.
    pub(crate) fn set_synced(&mut self, synced: [bool; 2]) {
        self.synced = synced;
    }

    /// The time of the last valid line before the start point: a malformed
    /// line read first takes it, as it would have reading from the start.
    pub(crate) fn set_last_time(&mut self, t: Option<Nanos>) {
        self.last_time = t;
    }

    /// The end of the last line dropped because its stream was not synced:
    /// an event (possibly a tail of one) that was not delivered.
    pub(crate) fn dropped_end(&self) -> Option<Mark> {
        let framed = self.framer.as_ref().and_then(|f| f.dropped_end());
        self.dropped_end.max(framed)
    }

    /// True while some `P` chain waits for its `F`.
    pub(crate) fn has_open_chain(&self) -> bool {
        self.chains.any_open()
    }

    /// The head of the oldest open chain (or framed event), if any.
    pub(crate) fn oldest_open_head(&self) -> Option<Mark> {
        let chains = self.chains.oldest_head();
        match self.framer.as_ref().and_then(|f| f.oldest_open_head()) {
            Some(g) => Some(chains.map_or(g, |c| c.min(g))),
            None => chains,
        }
    }

    /// Per stream, the head of its open chain.
    pub(crate) fn open_heads(&self) -> [Option<Mark>; 2] {
        self.chains.heads()
    }

    fn restart_after(&self, end: Mark) -> Mark {
        self.oldest_open_head().map_or(end, |h| h.min(end))
    }

    /// Feeds one line. `line` excludes the `\n`; `raw` is the stored line
    /// with it (used for the `cri` output).
    pub fn push<F: FnMut(&Event<'_>)>(
        &mut self,
        line: &[u8],
        raw: &[u8],
        pos: LinePos,
        emit: &mut F,
    ) {
        let Some(mut fr) = self.framer.take() else {
            self.push_line(line, raw, pos, emit);
            return;
        };
        let (stream, time) = match cri::parse_line(line) {
            Ok(l) => (Some(l.stream), Some(l.time)),
            Err(_) => (None, None),
        };
        let start = Mark {
            file: pos.file,
            offset: pos.start,
        };
        if fr.before_line(stream, time, start, self.open_heads(), emit) {
            self.push_line(line, raw, pos, &mut |ev: &Event<'_>| fr.event(ev, emit));
        }
        fr.after_line(Mark {
            file: pos.file,
            offset: pos.end,
        });
        self.framer = Some(fr);
    }

    fn push_line<F: FnMut(&Event<'_>)>(
        &mut self,
        line: &[u8],
        raw: &[u8],
        pos: LinePos,
        emit: &mut F,
    ) {
        let end_mark = Mark {
            file: pos.file,
            offset: pos.end,
        };
        let cri = match cri::parse_line(line) {
            Ok(l) => l,
            Err(_) => {
                let restart = self.restart_after(end_mark);
                self.emit_pieces(
                    line,
                    raw,
                    self.last_time,
                    Mark {
                        file: pos.file,
                        offset: pos.start,
                    },
                    end_mark,
                    restart,
                    emit,
                );
                return;
            }
        };
        let s = cri.stream.index();
        if !self.synced[s] {
            if cri.tag == Tag::Full {
                self.synced[s] = true;
                self.dropped_end = Some(end_mark);
            }
            return;
        }
        self.last_time = Some(cri.time);
        self.push_valid(cri, raw, pos, end_mark, emit);
    }

    fn push_valid<F: FnMut(&Event<'_>)>(
        &mut self,
        cri: CriLine<'_>,
        raw: &[u8],
        pos: LinePos,
        end_mark: Mark,
        emit: &mut F,
    ) {
        let s = cri.stream.index();
        let start = Mark {
            file: pos.file,
            offset: pos.start,
        };
        if self.chains.head(cri.stream).is_none() {
            let g = &mut self.gathered[s];
            g.time = cri.time;
            g.content.clear();
            g.raw.clear();
            g.pieces = 0;
        }
        // While its line is fed the chain counts as open, even for an `F`
        // line: a piece cut from it restarts at its head.
        let head = self.chains.open_at(cri.stream, start);
        let (data, sub) = self.cut_pieces(cri.stream, cri.content, head, end_mark, emit);
        match cri.tag {
            Tag::Partial => {
                let g = &mut self.gathered[s];
                g.content.extend_from_slice(data);
                if self.keep_raw {
                    g.raw.extend_from_slice(raw);
                }
            }
            Tag::Full => {
                let end = End { at: end_mark, sub };
                self.complete(cri.stream, data, raw, head, end, emit);
            }
        }
    }

    /// Delivers pieces of `stream`'s open chain while it would outgrow
    /// `max_event_bytes` with `data`; returns what is left of `data` and
    /// the piece number of the next event at this line.
    fn cut_pieces<'d, F: FnMut(&Event<'_>)>(
        &mut self,
        stream: Stream,
        mut data: &'d [u8],
        head: Mark,
        end_mark: Mark,
        emit: &mut F,
    ) -> (&'d [u8], u32) {
        let s = stream.index();
        let mut sub = 0u32;
        loop {
            let room = self.max_event_bytes - self.gathered[s].content.len();
            if data.len() <= room {
                return (data, sub);
            }
            // The chain stays open: reading must restart at the oldest head.
            let restart = self.chains.oldest_head().unwrap_or(end_mark);
            let open = self.open_heads();
            let g = &mut self.gathered[s];
            let content = if g.content.is_empty() {
                &data[..room]
            } else {
                g.content.extend_from_slice(&data[..room]);
                &g.content[..]
            };
            let end = End { at: end_mark, sub };
            emit(&Event {
                time: Some(g.time),
                stream: Some(stream),
                content,
                raw: &g.raw,
                flags: Flags {
                    truncated: true,
                    ..Flags::default()
                },
                end,
                restart,
                head,
                open,
                tail: end.at,
                framed: false,
            });
            g.content.clear();
            g.raw.clear();
            g.pieces += 1;
            data = &data[room..];
            sub += 1;
        }
    }

    /// The `F` line of `stream`'s chain: ends the chain and delivers its
    /// event (`data` is the line's content after any pieces cut).
    fn complete<F: FnMut(&Event<'_>)>(
        &mut self,
        stream: Stream,
        data: &[u8],
        raw: &[u8],
        head: Mark,
        end: End,
        emit: &mut F,
    ) {
        self.chains.close(stream);
        let restart = self.restart_after(end.at);
        let open = self.open_heads();
        let g = &mut self.gathered[stream.index()];
        let flags = Flags {
            truncated: g.pieces > 0,
            ..Flags::default()
        };
        let whole = g.content.is_empty() && g.raw.is_empty();
        if !whole {
            g.content.extend_from_slice(data);
            g.raw.extend_from_slice(raw);
        }
        emit(&Event {
            time: Some(g.time),
            stream: Some(stream),
            // A single line is served from where it lies, uncopied.
            content: if whole { data } else { &g.content },
            raw: if whole { raw } else { &g.raw },
            flags,
            end,
            restart,
            head,
            open,
            tail: end.at,
            framed: false,
        });
        g.content.clear();
        g.raw.clear();
        // One huge event must not pin its buffer for the rest of a long
        // follow.
        if g.content.capacity() > KEEP_CAPACITY {
            g.content = Vec::new();
        }
        if g.raw.capacity() > KEEP_CAPACITY {
            g.raw = Vec::new();
        }
    }

    /// Emits a malformed line as one event, or as pieces of at most
    /// `max_event_bytes` flagged truncated; the stored line goes with the
    /// last piece.
    #[allow(clippy::too_many_arguments)]
    fn emit_pieces<F: FnMut(&Event<'_>)>(
        &self,
        content: &[u8],
        raw: &[u8],
        time: Option<Nanos>,
        head: Mark,
        end_mark: Mark,
        restart: Mark,
        emit: &mut F,
    ) {
        let max = self.max_event_bytes;
        let open = self.open_heads();
        let flags = Flags {
            malformed: true,
            ..Flags::default()
        };
        let mut data = content;
        let mut sub = 0;
        while data.len() > max {
            emit(&Event {
                time,
                stream: None,
                content: &data[..max],
                raw: &[],
                flags: Flags {
                    truncated: true,
                    ..flags
                },
                end: End { at: end_mark, sub },
                restart,
                head,
                open,
                tail: end_mark,
                framed: false,
            });
            data = &data[max..];
            sub += 1;
        }
        emit(&Event {
            time,
            stream: None,
            content: data,
            raw,
            flags: Flags {
                truncated: sub > 0,
                ..flags
            },
            end: End { at: end_mark, sub },
            restart,
            head,
            open,
            tail: end_mark,
            framed: false,
        });
    }

    /// Flushes every open chain as an event flagged `partial`: the attempt
    /// is closed for good, so no `F` will come. `at` is the end of the last
    /// file; chains are flushed oldest head first.
    pub(crate) fn finish<F: FnMut(&Event<'_>)>(&mut self, at: Mark, emit: &mut F) {
        match self.framer.take() {
            None => self.finish_chains(at, emit),
            Some(mut fr) => {
                // Stream by stream: its last line, then its open event.
                for i in 0..2 {
                    self.finish_chain(i, at, FINISH_SUB, &mut |ev: &Event<'_>| fr.event(ev, emit));
                    fr.finish(i, at, self.open_heads(), emit);
                }
                self.framer = Some(fr);
            }
        }
    }

    fn finish_chains<F: FnMut(&Event<'_>)>(&mut self, at: Mark, emit: &mut F) {
        let heads = self.chains.heads();
        let mut order: Vec<usize> = (0..2).filter(|&i| heads[i].is_some()).collect();
        order.sort_by_key(|&i| heads[i]);
        for (sub, i) in order.into_iter().enumerate() {
            self.finish_chain(i, at, FINISH_SUB + sub as u32, emit);
        }
    }

    /// Flushes stream `i`'s open chain, if any, as a `partial` event.
    fn finish_chain<F: FnMut(&Event<'_>)>(&mut self, i: usize, at: Mark, sub: u32, emit: &mut F) {
        let stream = STREAMS[i];
        let Some(head) = self.chains.head(stream) else {
            return;
        };
        self.chains.close(stream);
        // The other stream's chain may still be open: a cursor on this
        // event must restart at its head.
        let open = self.open_heads();
        let restart = self.restart_after(at);
        let g = &mut self.gathered[i];
        let ev = Event {
            time: Some(g.time),
            stream: Some(stream),
            content: &g.content,
            raw: &g.raw,
            flags: Flags {
                partial: true,
                truncated: g.pieces > 0,
                malformed: false,
            },
            // After any event the last line itself completed.
            end: End { at, sub },
            restart,
            head,
            open,
            tail: at,
            framed: false,
        };
        emit(&ev);
        g.content.clear();
        g.raw.clear();
    }

    /// Drops open chains (the file was truncated under the reader: what
    /// they held can no longer be completed) and marks both streams synced.
    pub(crate) fn reset(&mut self) {
        if let Some(fr) = &mut self.framer {
            fr.reset();
        }
        self.chains = Chains::default();
        for g in &mut self.gathered {
            g.content.clear();
            g.raw.clear();
        }
        self.synced = [true; 2];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Owned {
        stream: Option<Stream>,
        content: Vec<u8>,
        raw: Vec<u8>,
        flags: Flags,
        end: End,
        restart: Mark,
    }

    fn run(lines: &[&[u8]], max: usize, finish: bool) -> Vec<Owned> {
        let mut a = Assembler::new(max, RawLines::Keep);
        let mut out = Vec::new();
        let mut off = 0u64;
        let mut emit = |e: &Event<'_>| {
            out.push(Owned {
                stream: e.stream,
                content: e.content.to_vec(),
                raw: e.raw.to_vec(),
                flags: e.flags,
                end: e.end,
                restart: e.restart,
            })
        };
        for l in lines {
            let mut raw = l.to_vec();
            raw.push(b'\n');
            let pos = LinePos {
                file: 0,
                start: off,
                end: off + raw.len() as u64,
            };
            off = pos.end;
            a.push(l, &raw, pos, &mut emit);
        }
        if finish {
            a.finish(
                Mark {
                    file: 0,
                    offset: off,
                },
                &mut emit,
            );
        }
        out
    }

    fn contents(evs: &[Owned]) -> Vec<(Option<Stream>, String, Flags)> {
        evs.iter()
            .map(|e| {
                (
                    e.stream,
                    String::from_utf8_lossy(&e.content).into_owned(),
                    e.flags,
                )
            })
            .collect()
    }

    const T: &str = "2026-11-21T05:26:50.936241998Z";

    fn l(stream: &str, tag: &str, c: &str) -> Vec<u8> {
        format!("{T} {stream} {tag} {c}").into_bytes()
    }

    #[test]
    fn merges_partials_per_stream() {
        let lines = [
            l("stdout", "P", "a1"),
            l("stderr", "F", "err"),
            l("stdout", "P", "a2"),
            l("stdout", "F", "a3"),
            l("stdout", "F", "b"),
        ];
        let refs: Vec<&[u8]> = lines.iter().map(|v| v.as_slice()).collect();
        let evs = run(&refs, 1 << 20, true);
        let f = Flags::default();
        assert_eq!(
            contents(&evs),
            vec![
                (Some(Stream::Stderr), "err".into(), f),
                (Some(Stream::Stdout), "a1a2a3".into(), f),
                (Some(Stream::Stdout), "b".into(), f),
            ]
        );
        // The stderr event completed while the stdout chain was open: its
        // restart mark is that chain's head.
        assert_eq!(evs[0].restart, Mark { file: 0, offset: 0 });
        // The stdout event's raw is its three lines.
        assert_eq!(evs[1].raw.split(|&b| b == b'\n').count(), 4);
        assert!(evs.windows(2).all(|w| w[0].end < w[1].end));
    }

    #[test]
    fn malformed_lines_pass_through() {
        let lines: Vec<&[u8]> = vec![b"not cri at all", b"", b"\xff\xfe\0"];
        let evs = run(&lines, 1 << 20, false);
        assert_eq!(evs.len(), 3);
        assert!(evs.iter().all(|e| e.flags.malformed && e.stream.is_none()));
        assert_eq!(evs[2].content, b"\xff\xfe\0");
    }

    #[test]
    fn trailing_chain_flushed_as_partial_only_on_finish() {
        let lines = [l("stdout", "F", "x"), l("stdout", "P", "never ends")];
        let refs: Vec<&[u8]> = lines.iter().map(|v| v.as_slice()).collect();
        assert_eq!(run(&refs, 1 << 20, false).len(), 1);
        let evs = run(&refs, 1 << 20, true);
        assert_eq!(evs.len(), 2);
        assert!(evs[1].flags.partial);
        assert_eq!(evs[1].content, b"never ends");
    }

    #[test]
    fn cap_splits_into_truncated_pieces() {
        let lines = [
            l("stdout", "P", "aaaa"),
            l("stdout", "F", "bbbbbb"),
            l("stdout", "F", "cccccccccc"),
            l("stdout", "F", "dd"),
        ];
        let refs: Vec<&[u8]> = lines.iter().map(|v| v.as_slice()).collect();
        let evs = run(&refs, 4, false);
        let got: Vec<(String, bool)> = evs
            .iter()
            .map(|e| {
                (
                    String::from_utf8_lossy(&e.content).into(),
                    e.flags.truncated,
                )
            })
            .collect();
        let want: Vec<(String, bool)> = vec![
            ("aaaa".into(), true),
            ("bbbb".into(), true),
            ("bb".into(), true),
            ("cccc".into(), true),
            ("cccc".into(), true),
            ("cc".into(), true),
            ("dd".into(), false),
        ];
        assert_eq!(got, want);
        assert!(evs.windows(2).all(|w| w[0].end < w[1].end));
    }

    #[test]
    fn unsynced_start_drops_chain_tails() {
        let lines = [
            l("stdout", "P", "tail-of-older"),
            l("stdout", "F", "end"),
            l("stderr", "F", "e1"),
            l("stdout", "F", "new"),
        ];
        let mut a = Assembler::new(1 << 20, RawLines::Drop);
        a.set_synced([false; 2]);
        let mut got = Vec::new();
        let mut off = 0;
        for line in &lines {
            let pos = LinePos {
                file: 0,
                start: off,
                end: off + line.len() as u64 + 1,
            };
            off = pos.end;
            a.push(line, line, pos, &mut |e: &Event<'_>| {
                got.push(e.content.to_vec())
            });
        }
        // stderr's first F and stdout's first F are dropped: they may be
        // tails of chains that began before the start point.
        assert_eq!(got, vec![b"new".to_vec()]);
    }

    /// One generated event: stream, content.
    fn arb_events() -> impl Strategy<Value = Vec<(bool, Vec<u8>)>> {
        prop::collection::vec(
            (
                any::<bool>(),
                prop::collection::vec(
                    prop::num::u8::ANY.prop_filter("no newline", |b| *b != b'\n'),
                    0..40,
                ),
            ),
            0..30,
        )
    }

    proptest! {
        /// Any event set, split into P chunks at arbitrary points and
        /// interleaved across streams, reassembles to exactly the original
        /// events of each stream, in order.
        #[test]
        fn split_and_interleave_round_trip(
            events in arb_events(),
            cuts in prop::collection::vec(0usize..40, 0..200),
            interleave in prop::collection::vec(any::<bool>(), 0..400),
        ) {
            // Chunk each event into lines.
            let mut per_stream: [Vec<Vec<u8>>; 2] = [vec![], vec![]];
            let mut want: [Vec<Vec<u8>>; 2] = [vec![], vec![]];
            let mut ci = 0;
            for (is_err, content) in &events {
                let s = usize::from(*is_err);
                let name = if *is_err { "stderr" } else { "stdout" };
                want[s].push(content.clone());
                let mut rest = content.as_slice();
                loop {
                    let cut = cuts.get(ci).copied().unwrap_or(usize::MAX);
                    ci += 1;
                    if cut >= rest.len() || cut == 0 {
                        let mut line = format!("{T} {name} F ").into_bytes();
                        line.extend_from_slice(rest);
                        per_stream[s].push(line);
                        break;
                    }
                    let mut line = format!("{T} {name} P ").into_bytes();
                    line.extend_from_slice(&rest[..cut]);
                    per_stream[s].push(line);
                    rest = &rest[cut..];
                }
            }
            // Interleave the two streams' lines.
            let mut lines = Vec::new();
            let (mut i0, mut i1) = (0, 0);
            let mut k = 0;
            while i0 < per_stream[0].len() || i1 < per_stream[1].len() {
                let pick_err = interleave.get(k).copied().unwrap_or(false);
                k += 1;
                if (pick_err && i1 < per_stream[1].len()) || i0 >= per_stream[0].len() {
                    lines.push(per_stream[1][i1].clone());
                    i1 += 1;
                } else {
                    lines.push(per_stream[0][i0].clone());
                    i0 += 1;
                }
            }
            let refs: Vec<&[u8]> = lines.iter().map(|v| v.as_slice()).collect();
            let evs = run(&refs, 1 << 20, true);
            let mut got: [Vec<Vec<u8>>; 2] = [vec![], vec![]];
            for e in &evs {
                prop_assert!(!e.flags.malformed && !e.flags.partial && !e.flags.truncated);
                got[e.stream.unwrap().index()].push(e.content.clone());
            }
            prop_assert_eq!(&got, &want);
            prop_assert!(evs.windows(2).all(|w| w[0].end < w[1].end));
        }

        #[test]
        fn arbitrary_lines_never_panic(
            lines in prop::collection::vec(prop::collection::vec(prop::num::u8::ANY, 0..64), 0..50),
            max in 1usize..16,
        ) {
            let refs: Vec<&[u8]> = lines.iter().map(|v| v.as_slice()).collect();
            let evs = run(&refs, max, true);
            prop_assert!(evs.iter().all(|e| e.content.len() <= max));
            prop_assert!(evs.windows(2).all(|w| w[0].end < w[1].end));
        }
    }
}
