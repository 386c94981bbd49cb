//! Reading a container attempt's files: historic reads, `tailLines`,
//! `sinceTime`, cursors and follow.
//!
//! Files are read with large `pread`s into a reused buffer (not mapped: a
//! file truncated under a mapping would raise `SIGBUS`), lines are found with
//! `memchr` and fed to the [`Assembler`]; events pass the `Selector` and
//! are rendered into output chunks handed to a [`Sink`].
//!
//! * `tailLines` reads a window at the end of the set and widens it until it
//!   holds enough whole events; it never reads a whole file for a small tail.
//! * `sinceTime` binary-searches the line timestamps.
//! * A cursor names files by fingerprint, so resuming works after rotation.
//! * Follow ([`follow`]) keeps `(dev, inode, fingerprint)` and an offset for
//!   the file it is in; on each change notification it reads what was
//!   appended and, when the directory changed, finds where its file went and
//!   moves on to the files after it. It holds no descriptor but that file's
//!   between notifications.

mod files;
mod follow;
pub use follow::Follower;
mod out;
mod scan;
mod view;
mod window;

use files::{sess_file, Files, SessFile};
use out::{emit_range, JsonSize, Out};
pub(crate) use scan::{file_time_span, scan_lines};
use scan::{first_time, head_fingerprint, scan_back, time_from};
use scan::{scan_lines_within, Scan, LINE_SLACK};
use view::{open_attempt, View};
use window::Origin;

use std::sync::Arc;

use bytes::Bytes;

use crate::cri::{self, Nanos, Stream};
use crate::cursor::{Cursor, FilePoint};
use crate::event::framing::{Framing, Start};
use crate::event::{Assembler, Chains, End, Event, LinePos, Mark, RawLines};
use crate::fs::fileset::{self, Content, Known, LogFile, OpenLog};
use crate::fs::safe_open::{FileKey, SafeRoot};
use crate::fs::ContainerKey;
use crate::render::{self, Context, Format};
use crate::telemetry;

/// Read buffer size for historic reads.
const CHUNK: usize = 1 << 20;
/// Read buffer size while following (grows for long lines).
const FOLLOW_CHUNK: usize = 64 << 10;
/// The raw `cri` pass holds at most this much of one line: a longer one
/// is passed through in pieces.
const RAW_LINE_CAP: usize = 1 << 20;
/// How often a follower re-lists a directory that changes under it before
/// it goes on with what it saw.
const RECONCILE_ROUNDS: usize = 16;
/// How far back the stream-sync scan looks before assuming no open chain.
const SYNC_SCAN_BYTES: u64 = 1 << 20;

/// What to read, validated (see [`crate::serve::query`]).
#[derive(Clone, Debug)]
pub struct ReadSpec {
    pub stream: Option<Stream>,
    pub since: Option<Nanos>,
    pub until: Option<Nanos>,
    pub tail: Option<u64>,
    pub cursor: Option<String>,
    pub grep: Option<regex::bytes::Regex>,
    pub limit_bytes: Option<u64>,
    pub format: Format,
    pub timestamps: bool,
    pub follow: bool,
    pub max_event_bytes: usize,
    /// Hand each event to [`Sink::send_event`] alone, with its time (for
    /// merging several containers); no unfiltered `cri` passthrough.
    pub per_event: bool,
    /// The container's delimiter policy, when it is not `newline`.
    pub framing: Option<Framing>,
}

impl Default for ReadSpec {
    fn default() -> Self {
        Self {
            stream: None,
            since: None,
            until: None,
            tail: None,
            cursor: None,
            grep: None,
            limit_bytes: None,
            format: Format::Text,
            timestamps: false,
            follow: false,
            max_event_bytes: crate::event::DEFAULT_MAX_EVENT_BYTES,
            per_event: false,
            framing: None,
        }
    }
}

/// Which attempt to read, and where its files are.
#[derive(Clone, Debug)]
pub struct Target {
    pub root: Arc<SafeRoot>,
    /// The container's directory beneath the root.
    pub dir: ContainerKey,
    pub ctx: Context,
    /// Set once the runtime reports the attempt's container exited: its
    /// files are complete, so a trailing chain without its `F` is served
    /// (flagged partial) rather than held back, and a follower ends at the
    /// next change notification. Otherwise a newer attempt is what closes
    /// an attempt.
    pub finished: Arc<std::sync::atomic::AtomicBool>,
}

/// Where rendered output goes.
pub trait Sink {
    /// Hands over one chunk; false when the client is gone.
    fn send(&mut self, chunk: Bytes) -> bool;

    /// Hands over one rendered event with its time ([`ReadSpec::per_event`]).
    fn send_event(&mut self, time: Option<Nanos>, event: Bytes) -> bool {
        let _ = time;
        self.send(event)
    }

    /// True once the client is gone: a read that sends nothing for a while
    /// (a `grep` that matches little) stops without waiting for its next
    /// chunk to fail.
    fn is_closed(&self) -> bool {
        false
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn send(&mut self, chunk: Bytes) -> bool {
        (**self).send(chunk)
    }

    fn send_event(&mut self, time: Option<Nanos>, event: Bytes) -> bool {
        (**self).send_event(time, event)
    }

    fn is_closed(&self) -> bool {
        (**self).is_closed()
    }
}

/// What woke a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A file in the container directory was written.
    Modified,
    /// Files were created, renamed or deleted (or the view was rebuilt).
    Changed,
    /// The timeout given to [`Waiter::wait_for`] passed.
    Timeout,
    /// Stop: the client left or the agent shuts down.
    Stop,
}

/// Blocks until something happens to the container directory.
pub trait Waiter {
    fn wait(&mut self) -> Wake;

    /// Like [`Waiter::wait`], but gives up after `timeout` (when given)
    /// with [`Wake::Timeout`]. Waiters without a clock ignore it.
    fn wait_for(&mut self, timeout: Option<std::time::Duration>) -> Wake {
        let _ = timeout;
        self.wait()
    }
}

/// Why a read failed before any output.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("attempt {attempt} has no log files")]
    NoFiles { attempt: u32 },
    #[error("cursor: {0}")]
    Cursor(#[from] crate::cursor::CursorError),
    #[error("list {dir}: {source}")]
    List {
        dir: String,
        #[source]
        source: crate::fs::safe_open::SafeOpenError,
    },
}

/// Decides which events are delivered.
struct Selector {
    stream: Option<Stream>,
    since: Option<Nanos>,
    until: Option<Nanos>,
    grep: Option<regex::bytes::Regex>,
    /// Events at or before this were delivered before (cursor).
    after: Option<End>,
}

impl Selector {
    fn accepts(&self, ev: &Event<'_>) -> bool {
        if let Some(a) = self.after {
            if ev.end <= a {
                return false;
            }
        }
        if let Some(s) = self.stream {
            if ev.stream != Some(s) {
                return false;
            }
        }
        if let Some(t) = self.since {
            // A malformed line before any valid one has no time: it counts
            // as older than any time.
            if ev.time.is_none_or(|et| et < t) {
                return false;
            }
        }
        if let Some(u) = self.until {
            if ev.time.is_some_and(|et| et >= u) {
                return false;
            }
        }
        if let Some(g) = &self.grep {
            if !g.is_match(ev.content) {
                return false;
            }
        }
        true
    }
}

// === impl Files ===

/// A read of one attempt: its files, and the state that follow continues.
pub struct Session<'s> {
    target: Target,
    spec: ReadSpec,
    /// `cri` with no event filter: the historic part passes through in
    /// file order, without assembling events.
    raw: bool,
    files: Files,
    /// The cursor the read resumes after, decoded.
    cursor: Option<Cursor>,
    closed: bool,
    /// See [`View::held`].
    held: Option<Nanos>,
    out: Out<'s>,
    /// A follow step's budget ([`follow::STEP_BYTES`]).
    step_bytes: u64,
}

impl<'s> Session<'s> {
    /// Opens the attempt's files as they are now.
    ///
    /// # Errors
    ///
    /// The container directory cannot be listed, or the attempt has no
    /// files, or the cursor is not one of this attempt.
    pub fn open(
        target: Target,
        spec: ReadSpec,
        sink: impl Sink + Send + 's,
    ) -> Result<Self, ReadError> {
        let attempt = target.ctx.attempt;
        let key = target.ctx.key();
        // Decoded once, here; its file stays in the view (see
        // `open_attempt`).
        let cursor = match &spec.cursor {
            Some(c) => Some(Cursor::decode(c, key)?),
            None => None,
        };
        let resume = cursor.as_ref().map(|c| c.end.fingerprint);
        let chunk = if spec.follow && spec.tail.is_some() {
            FOLLOW_CHUNK
        } else {
            CHUNK
        };
        let mut files = Files {
            list: Vec::new(),
            fps: Vec::new(),
            buf: vec![0u8; chunk],
            line_cap: spec.max_event_bytes.saturating_add(LINE_SLACK),
        };
        let reading = |o: &OpenLog| resume.is_some() && o.fingerprint == resume;
        let mut view = open_attempt(&target, &reading, &|_, _| None)?;
        for _ in 1..RECONCILE_ROUNDS {
            if !view.raced {
                break;
            }
            view = open_attempt(&target, &reading, &|_, _| None)?;
        }
        let View {
            opened,
            closed,
            held,
            ..
        } = view;
        for o in opened {
            files.push(sess_file(o));
        }
        if files.list.is_empty() {
            return Err(ReadError::NoFiles { attempt });
        }
        let out = Out {
            sink: Box::new(sink),
            format: spec.format,
            timestamps: spec.timestamps,
            members: target.ctx.members(spec.format),
            limit_as_json: (spec.format == Format::Proto && spec.limit_bytes.is_some()).then(
                || JsonSize {
                    members: target.ctx.json_members(),
                    scratch: Vec::new(),
                },
            ),
            key,
            buf: Vec::new(),
            cursor: Vec::with_capacity(72),
            remaining: spec.limit_bytes,
            done: false,
            events: 0,
            per_event: spec.per_event,
            handed: 0,
        };
        let raw = spec.format == Format::Cri
            && !spec.per_event
            && spec.stream.is_none()
            && spec.grep.is_none()
            && spec.since.is_none()
            && spec.until.is_none()
            && spec.tail.is_none()
            && spec.cursor.is_none();
        Ok(Self {
            target,
            spec,
            raw,
            files,
            cursor,
            closed,
            held,
            out,
            step_bytes: follow::STEP_BYTES,
        })
    }

    /// The last file of the attempt is complete once the attempt is
    /// finished.
    fn last_file(&self) -> LastFile {
        LastFile::complete_if(self.closed)
    }

    fn selector(&self, after: Option<End>) -> Selector {
        Selector {
            stream: self.spec.stream,
            since: self.spec.since,
            until: self.spec.until,
            grep: self.spec.grep.clone(),
            after,
        }
    }

    /// Runs the historic part and, with `follow`, follows until the attempt
    /// ends, the output is done, or `waiter` says stop.
    pub fn run(mut self, waiter: &mut dyn Waiter) {
        if let Some(mut f) = self.history() {
            loop {
                let wake = if f.has_more() {
                    Wake::Modified
                } else {
                    waiter.wait_for(f.timeout())
                };
                if !self.follow_step(&mut f, wake) {
                    break;
                }
            }
        }
        self.out.flush();
    }

    /// The historic part of the read. With `follow` (and the attempt not
    /// finished), returns the [`Follower`] that [`Session::follow_step`]
    /// continues; otherwise the read is complete.
    pub fn history(&mut self) -> Option<Follower> {
        let origin = self.start_point();
        let Origin {
            at: start,
            sync,
            after,
            framed,
        } = self.tail_window(origin);
        let raw = if self.spec.format == Format::Cri {
            RawLines::Keep
        } else {
            RawLines::Drop
        };
        let mut asm = Assembler::new(self.spec.max_event_bytes, raw)
            .with_framing(self.spec.framing.clone(), framed);
        asm.set_synced(sync);
        asm.set_last_time(self.files.time_before(start));
        let sel = self.selector(after);
        let last = (self.files.list.len() - 1) as u32;
        let end = if self.raw {
            // The stored bytes as they are, up to the oldest chain still
            // open; from there on, events (so a chain is served whole once
            // complete, and lines behind it are not held up).
            self.raw = false;
            self.raw_pass(start, last)
                .and_then(|m| self.pass(m, last, self.last_file(), &mut asm, &sel))
        } else {
            // With a newer attempt, this one will not grow any more.
            self.pass(start, last, self.last_file(), &mut asm, &sel)
        };
        match end {
            Some(e) if self.spec.follow && !self.closed => {
                self.files.close_all_but(e.file, self.held.is_some());
            }
            _ => self.files.close_all(),
        }
        let mut follower = None;
        if let Some(end) = end {
            if self.closed {
                self.finish(&mut asm, &sel, end);
            } else if self.spec.follow {
                follower = self.start_following(asm, sel, end);
            } else {
                // A multi-line event the container paused after is
                // complete; one still being written is held back, as an
                // open `P` chain is.
                self.expire(&mut asm, &sel);
            }
        }
        self.out.flush();
        follower
    }

    fn finish(&mut self, asm: &mut Assembler, sel: &Selector, end: Mark) {
        let fps = &self.files.fps;
        let out = &mut self.out;
        asm.finish(end, &mut |ev: &Event<'_>| {
            if sel.accepts(ev) {
                out.event(ev, fps);
            }
        });
    }

    /// The delivering pass from `start` to the end of file `last`; returns
    /// where it ended, `None` when output is done (limit, client gone, or
    /// past `untilTime`).
    fn pass(
        &mut self,
        start: Mark,
        last: u32,
        last_file: LastFile,
        asm: &mut Assembler,
        sel: &Selector,
    ) -> Option<Mark> {
        self.pass_within(start, last, last_file, asm, sel, None)
            .map(|p| p.end)
    }

    /// [`Session::pass`], pausing at the first line start once `budget`
    /// bytes were read or handed to the sink (see [`Passed`]).
    fn pass_within(
        &mut self,
        start: Mark,
        last: u32,
        last_file: LastFile,
        asm: &mut Assembler,
        sel: &Selector,
        budget: Option<u64>,
    ) -> Option<Passed> {
        let until = self.spec.until;
        let handed_before = self.out.handed;
        // The drive calls one closure, then the other, never both at once.
        let out = std::cell::RefCell::new(&mut self.out);
        let mut on_event = |ev: &Event<'_>, fps: &[Option<u64>]| {
            if sel.accepts(ev) {
                out.borrow_mut().event(ev, fps);
            }
        };
        let mut done_flag = false;
        let mut lines = 0u32;
        let r = self.files.drive(
            start,
            last,
            last_file,
            budget,
            asm,
            &mut on_event,
            &mut |line, a| {
                // Output done (limit reached, client gone): stop at once,
                // not at the end of the file.
                lines = lines.wrapping_add(1);
                if done_flag
                    || out.borrow().done
                    || (lines.is_multiple_of(256) && out.borrow_mut().stopped())
                {
                    return Flow::Stop;
                }
                if past_until(until, line, a) {
                    done_flag = true;
                    return Flow::Stop;
                }
                if budget.is_some_and(|b| out.borrow().handed - handed_before >= b) {
                    // What it read renders larger (json, context).
                    return Flow::Pause;
                }
                Flow::Go
            },
        );
        if self.out.done {
            return None;
        }
        r
    }

    /// The `cri` output with no filter: the stored lines in file order,
    /// copied through in large blocks. In the file still being written,
    /// output stops at the head of the oldest open `P` chain until its `F`
    /// arrives, so a chain is never served half; the mark returned is that
    /// head, where the next pass resumes.
    fn raw_pass(&mut self, start: Mark, last: u32) -> Option<Mark> {
        let mut at = start;
        for idx in start.file as usize..=last as usize {
            let from = if idx == start.file as usize {
                start.offset
            } else {
                0
            };
            at = Mark {
                file: idx as u32,
                offset: self.raw_file(idx, from, idx != last as usize),
            };
            if self.out.done {
                return None;
            }
        }
        Some(at)
    }

    /// The raw pass over file `idx` from `pos`: the whole of it when
    /// `closed` (a later file exists), else up to the oldest open chain.
    /// Returns where the next pass resumes.
    fn raw_file(&mut self, idx: usize, mut pos: u64, closed: bool) -> u64 {
        let mut chains: Chains<u64> = Chains::default();
        let mut emitted = pos;
        let content = &self.files.list[idx].content;
        let buf = &mut self.files.buf;
        let mut have = 0usize;
        loop {
            if have == buf.len() {
                let n = (buf.len() * 2).clamp(FOLLOW_CHUNK, RAW_LINE_CAP);
                if n == buf.len() {
                    // One line longer than the cap: pass it through.
                    emit_range(&mut self.out, content, emitted, pos);
                    self.out.raw(&buf[..have]);
                    pos += have as u64;
                    emitted = pos;
                    chains = Chains::default();
                    have = 0;
                } else {
                    buf.resize(n, 0);
                }
            }
            let n = match content.read_at(pos + have as u64, &mut buf[have..]) {
                Ok(n) => {
                    telemetry::read_bytes(n as u64);
                    n
                }
                Err(e) => {
                    telemetry::read_failed(&self.files.list[idx].log.name, &e);
                    0
                }
            };
            if n == 0 {
                if closed && have > 0 {
                    emit_range(&mut self.out, content, emitted, pos);
                    self.out.raw(&buf[..have]);
                    self.out.raw(b"\n");
                    pos += have as u64;
                    emitted = pos;
                }
                break;
            }
            let filled = have + n;
            if pos == 0 && self.files.fps[idx].is_none() {
                self.files.fps[idx] = fileset::fingerprint_of(&buf[..filled]);
            }
            let Some(nl) = memchr::memrchr(b'\n', &buf[..filled]) else {
                have = filled;
                continue;
            };
            let complete = nl + 1;
            if !closed {
                let mut i = 0;
                while let Some(e) = memchr::memchr(b'\n', &buf[i..complete]) {
                    chains.observe(&buf[i..i + e], pos + i as u64);
                    i += e + 1;
                }
            }
            let safe = chains.oldest_head().unwrap_or(pos + complete as u64);
            if safe > emitted {
                // What was held back earlier has left the buffer.
                emit_range(&mut self.out, content, emitted, pos);
                let from = (emitted.max(pos) - pos) as usize;
                self.out.raw(&buf[from..(safe - pos) as usize]);
                emitted = safe;
            }
            buf.copy_within(complete..filled, 0);
            pos += complete as u64;
            have = filled - complete;
            if self.out.stopped() {
                break;
            }
        }
        if closed {
            pos
        } else {
            emitted
        }
    }

    /// Flushes the multi-line events due by now (less the grace).
    fn expire(&mut self, asm: &mut Assembler, sel: &Selector) {
        if asm.deadline().is_none() {
            return;
        }
        let now = cri::now_nanos().saturating_sub(crate::event::framing::GRACE);
        let fps = &self.files.fps;
        let out = &mut self.out;
        asm.expire(now, &mut |ev: &Event<'_>| {
            if sel.accepts(ev) {
                out.event(ev, fps);
            }
        });
    }
}

/// Where a pass ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Passed {
    /// The position reached: everything before it was read.
    end: Mark,
    /// It stopped at `end`, a line start, because its budget was spent;
    /// the file goes on.
    paused: bool,
}

/// What a pass does with the next line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Go,
    /// Output is done.
    Stop,
    /// The budget is spent: end the pass before this line.
    Pause,
}

/// Whether the last file of a pass may still grow: its trailing bytes
/// without `\n` wait for their newline unless it is complete (a later file
/// exists, or the attempt is finished).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LastFile {
    Growing,
    Complete,
}

impl LastFile {
    fn complete_if(complete: bool) -> Self {
        if complete {
            Self::Complete
        } else {
            Self::Growing
        }
    }
}

/// True once a line at or after `untilTime` is reached with no chain open:
/// nothing after it can be delivered.
fn past_until(until: Option<Nanos>, line: &[u8], asm: &Assembler) -> bool {
    match until {
        Some(u) => !asm.has_open_before(u) && cri::line_timestamp(line).is_some_and(|t| t >= u),
        None => false,
    }
}

#[cfg(test)]
mod tests;
