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
//! * Follow keeps `(dev, inode, fingerprint)` and an offset for the file it
//!   is in; on each change notification it reads what was appended and, when
//!   the directory changed, finds where its file went and moves on to the
//!   files after it. It holds no descriptor between notifications.

use std::sync::Arc;

use bytes::Bytes;

use crate::cri::{self, Nanos, Stream, Tag};
use crate::cursor::{Cursor, FilePoint};
use crate::event::framing::{Framing, Start};
use crate::event::{Assembler, End, Event, LinePos, Mark};
use crate::fs::fileset::{self, Content, LogFile, OpenLog};
use crate::fs::safe_open::{FileKey, SafeRoot};
use crate::render::{self, Context, Format};
use crate::telemetry;

/// Read buffer size for historic reads.
const CHUNK: usize = 1 << 20;
/// Read buffer size while following (grows for long lines).
const FOLLOW_CHUNK: usize = 64 << 10;
/// Longest line kept whole; a longer one is cut (and flagged by assembly).
const LINE_CAP: usize = 64 << 20;
/// Output is handed to the sink in chunks of about this size. Chunk
/// buffers stay below glibc's mmap threshold (128 KiB), so they come from
/// the heap and are reused instead of being mapped and faulted in each time.
const OUT_CHUNK: usize = 64 << 10;
/// Capacity of a fresh chunk buffer: a chunk plus room for a typical line.
const OUT_CAPACITY: usize = OUT_CHUNK + (16 << 10);
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
    /// `[pod directory, container]` beneath the root.
    pub dir: [String; 2],
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

/// One file of the session, by session-local index.
struct SessFile {
    log: LogFile,
    key: FileKey,
    fingerprint: Option<u64>,
    content: Content,
    size: u64,
}

/// Renders accepted events and hands chunks to the sink.
struct Out<'s> {
    sink: &'s mut dyn Sink,
    format: Format,
    timestamps: bool,
    members: Vec<u8>,
    key: u64,
    buf: Vec<u8>,
    /// Scratch space for one event's cursor.
    cursor: Vec<u8>,
    remaining: Option<u64>,
    /// No more output: limit reached or client gone.
    done: bool,
    /// Each event goes to the sink alone ([`ReadSpec::per_event`]).
    per_event: bool,
}

impl Out<'_> {
    fn event(&mut self, ev: &Event<'_>, fps: &[Option<u64>]) {
        if self.done {
            return;
        }
        self.cursor.clear();
        if self.format == Format::Json {
            let fp = |i: u32| fps.get(i as usize).copied().flatten().unwrap_or(0);
            Cursor {
                key: self.key,
                end: FilePoint {
                    fingerprint: fp(ev.end.at.file),
                    offset: ev.end.at.offset,
                },
                sub: ev.end.sub,
                restart: FilePoint {
                    fingerprint: fp(ev.restart.file),
                    offset: ev.restart.offset,
                },
                open: ev.framed.then(|| {
                    ev.open.map(|h| {
                        h.map(|m| FilePoint {
                            fingerprint: fp(m.file),
                            offset: m.offset,
                        })
                    })
                }),
            }
            .encode_into(&mut self.cursor);
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve(OUT_CAPACITY);
        }
        let before = self.buf.len();
        render::render(
            &mut self.buf,
            ev,
            self.format,
            self.timestamps,
            &self.cursor,
            &self.members,
        );
        if ev.flags.malformed {
            telemetry::malformed_event();
        }
        if let Some(rem) = self.remaining {
            let n = (self.buf.len() - before) as u64;
            if n > rem {
                if self.format == Format::Json {
                    // Whole events only: a cut JSON object helps no one.
                    self.buf.truncate(before);
                } else {
                    self.buf.truncate(before + rem as usize);
                }
                self.remaining = Some(0);
                if self.per_event && !self.buf.is_empty() {
                    // The cut piece keeps its time, so a merge keeps its place.
                    let piece = Bytes::copy_from_slice(&self.buf);
                    self.buf.clear();
                    self.sink.send_event(ev.time, piece);
                }
                self.flush();
                self.done = true;
                return;
            }
            self.remaining = Some(rem - n);
        }
        if self.per_event {
            // One event, copied out so the buffer keeps its capacity.
            let event = Bytes::copy_from_slice(&self.buf);
            self.buf.clear();
            if !self.sink.send_event(ev.time, event) {
                self.done = true;
            }
        } else if self.buf.len() >= OUT_CHUNK {
            self.flush();
        }
    }

    /// Passes stored bytes through unchanged (`cri` without filters).
    fn raw(&mut self, bytes: &[u8]) {
        if self.done || bytes.is_empty() {
            return;
        }
        let mut bytes = bytes;
        let mut last = false;
        if let Some(rem) = self.remaining {
            if bytes.len() as u64 >= rem {
                bytes = &bytes[..rem as usize];
                last = true;
            }
            self.remaining = Some(rem - bytes.len() as u64);
        }
        while !bytes.is_empty() && !self.done {
            if self.buf.capacity() == 0 {
                self.buf.reserve(OUT_CAPACITY);
            }
            let room = OUT_CHUNK.saturating_sub(self.buf.len()).max(1);
            let n = room.min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.buf.len() >= OUT_CHUNK {
                self.flush();
            }
        }
        if last {
            self.flush();
            self.done = true;
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() || self.done {
            return;
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        if !self.sink.send(chunk) {
            self.done = true;
        }
    }
}

/// A line callback: the line without `\n`, with it, and its start offset.
type LineFn<'a> = dyn FnMut(&[u8], &[u8], u64) -> bool + 'a;

/// Scans the complete lines of `content` from `start`. `on_line` gets the
/// line without `\n`, the line with it, and its start offset; it returns
/// false to stop. Returns the offset after the last line consumed. When
/// `closed`, trailing bytes without `\n` are delivered as a line too.
fn scan_lines(
    content: &Content,
    start: u64,
    buf: &mut Vec<u8>,
    closed: bool,
    on_line: &mut LineFn<'_>,
) -> std::io::Result<u64> {
    let mut pos = start; // file offset of buf[0]
    let mut have = 0usize;
    loop {
        if have == buf.len() {
            // A line longer than the buffer: grow, up to the cap.
            if buf.len() >= LINE_CAP {
                let keep = on_line(&buf[..have], &buf[..have], pos);
                pos += have as u64;
                have = 0;
                if !keep {
                    return Ok(pos);
                }
            } else {
                let n = (buf.len() * 2).clamp(FOLLOW_CHUNK, LINE_CAP);
                buf.resize(n, 0);
            }
        }
        let n = content.read_at(pos + have as u64, &mut buf[have..])?;
        if n == 0 {
            if closed && have > 0 {
                let mut line = buf[..have].to_vec();
                let l = line.len();
                line.push(b'\n');
                if on_line(&line[..l], &line, pos) {
                    pos += have as u64;
                }
            }
            return Ok(pos);
        }
        let filled = have + n;
        let mut i = 0usize;
        while let Some(nl) = memchr::memchr(b'\n', &buf[i..filled]) {
            let end = i + nl + 1;
            let keep = on_line(&buf[i..end - 1], &buf[i..end], pos + i as u64);
            i = end;
            if !keep {
                return Ok(pos + i as u64);
            }
        }
        // Move the incomplete tail to the front.
        buf.copy_within(i..filled, 0);
        pos += i as u64;
        have = filled - i;
    }
}

/// Reads the lines before `end` backwards, nearest first, until `on_line`
/// returns false or `budget` bytes were read.
fn scan_back(
    content: &Content,
    end: u64,
    budget: u64,
    on_line: &mut dyn FnMut(&[u8], u64) -> bool,
) -> std::io::Result<bool> {
    const BLOCK: u64 = 64 << 10;
    let mut pos = end;
    let mut carry: Vec<u8> = Vec::new();
    let mut read = 0u64;
    let mut block = vec![0u8; BLOCK as usize];
    while pos > 0 && read < budget {
        let from = pos.saturating_sub(BLOCK);
        let len = (pos - from) as usize;
        let mut got = 0;
        while got < len {
            let n = content.read_at(from + got as u64, &mut block[got..len])?;
            if n == 0 {
                break;
            }
            got += n;
        }
        read += len as u64;
        let mut data = block[..got].to_vec();
        data.extend_from_slice(&carry);
        // Lines end at '\n'; the segment before the first '\n' may continue
        // in the previous block.
        let mut stop = data.len();
        // The data ends at a line boundary (end is one): drop the final '\n'
        // from consideration when splitting.
        if stop > 0 && data[stop - 1] == b'\n' {
            stop -= 1;
        }
        while let Some(nl) = memchr::memrchr(b'\n', &data[..stop]) {
            let line = &data[nl + 1..stop];
            if !on_line(line, from + nl as u64 + 1) {
                return Ok(false);
            }
            stop = nl;
        }
        carry = data[..stop].to_vec();
        carry.push(b'\n');
        pos = from;
    }
    if pos == 0 && !carry.is_empty() {
        let l = carry.len() - 1;
        return Ok(on_line(&carry[..l], 0));
    }
    Ok(true)
}

/// The files of one attempt in read order, with the names of all attempts.
fn list_attempt(target: &Target, attempt: u32) -> Result<(Vec<LogFile>, bool), ReadError> {
    let dir = [target.dir[0].as_str(), target.dir[1].as_str()];
    let entries = target
        .root
        .list_dir(&dir)
        .map_err(|source| ReadError::List {
            dir: dir.join("/"),
            source,
        })?;
    let groups = fileset::group(&entries);
    let closed = target.finished.load(std::sync::atomic::Ordering::Acquire)
        || groups.keys().any(|&a| a > attempt);
    Ok((groups.get(&attempt).cloned().unwrap_or_default(), closed))
}

/// The files a session knows, by session-local index, in read order.
struct Files {
    list: Vec<SessFile>,
    fps: Vec<Option<u64>>,
    buf: Vec<u8>,
}

// === impl Files ===

impl Files {
    fn push(&mut self, f: SessFile) -> u32 {
        self.fps.push(f.fingerprint);
        self.list.push(f);
        (self.list.len() - 1) as u32
    }

    fn set_start(&self) -> Mark {
        Mark { file: 0, offset: 0 }
    }

    fn set_end(&self) -> Mark {
        let last = self.list.len() - 1;
        Mark {
            file: last as u32,
            offset: self.list[last].size,
        }
    }

    fn index_of(&self, fp: u64) -> Option<u32> {
        self.fps
            .iter()
            .position(|f| *f == Some(fp))
            .map(|i| i as u32)
    }

    /// Drops every descriptor: nothing stays open between reads, so a
    /// deleted file's space is freed at once.
    fn close_all(&mut self) {
        for f in &mut self.list {
            f.content = Content::Mem(Arc::new(Vec::new()));
        }
    }

    /// Drops every descriptor but that of file `keep` when it is the active
    /// file, or a rotated one still written (`held`; other rotated files are
    /// never kept open).
    fn close_all_but(&mut self, keep: u32, held: bool) {
        for (i, f) in self.list.iter_mut().enumerate() {
            if i as u32 != keep || (f.log.rotated.is_some() && !held) {
                f.content = Content::Mem(Arc::new(Vec::new()));
            }
        }
    }

    /// The line start about `bytes` before the end of the set.
    fn back_off(&self, bytes: u64) -> Mark {
        let mut idx = self.list.len() - 1;
        let mut remaining = bytes;
        loop {
            let size = self.list[idx].size;
            if remaining <= size {
                let off = self.next_line_start(idx, size - remaining);
                return Mark {
                    file: idx as u32,
                    offset: off,
                };
            }
            if idx == 0 {
                return self.set_start();
            }
            remaining -= size;
            idx -= 1;
        }
    }

    /// The first line start at or after `off` in file `idx`.
    fn next_line_start(&self, idx: usize, off: u64) -> u64 {
        if off == 0 {
            return 0;
        }
        let content = &self.list[idx].content;
        let mut pos = off - 1;
        let mut block = [0u8; 4096];
        loop {
            match content.read_at(pos, &mut block) {
                Ok(0) | Err(_) => return self.list[idx].size,
                Ok(n) => {
                    if let Some(i) = memchr::memchr(b'\n', &block[..n]) {
                        return pos + i as u64 + 1;
                    }
                    pos += n as u64;
                }
            }
        }
    }

    /// Per stream: true when no `P` chain of that stream spans `at` (its
    /// last line before `at` is an `F`, or it has none within reach).
    fn sync_at(&self, at: Mark) -> [bool; 2] {
        let mut state: [Option<bool>; 2] = [None, None];
        self.walk_back(at, &mut |line| {
            if let Ok(l) = cri::parse_line(line) {
                let s = l.stream.index();
                if state[s].is_none() {
                    state[s] = Some(l.tag == Tag::Full);
                }
            }
            state.iter().any(Option::is_none)
        });
        [state[0].unwrap_or(true), state[1].unwrap_or(true)]
    }

    /// The time of the last valid line before `at` (within the sync scan
    /// budget), the time a malformed line at `at` inherits.
    fn time_before(&self, at: Mark) -> Option<Nanos> {
        let mut found = None;
        self.walk_back(at, &mut |line| {
            found = cri::parse_line(line).ok().map(|l| l.time);
            found.is_none()
        });
        found
    }

    /// Hands the lines before `at` to `on_line`, newest first, across
    /// files, until it returns false or `SYNC_SCAN_BYTES` are scanned.
    fn walk_back(&self, at: Mark, on_line: &mut dyn FnMut(&[u8]) -> bool) {
        let mut budget = SYNC_SCAN_BYTES;
        let mut idx = at.file as usize;
        let mut end = at.offset;
        loop {
            let content = &self.list[idx].content;
            let r = scan_back(content, end, budget, &mut |line, _| {
                budget = budget.saturating_sub(line.len() as u64 + 1);
                on_line(line) && budget > 0
            });
            if !matches!(r, Ok(true)) || idx == 0 || budget == 0 {
                return;
            }
            idx -= 1;
            end = self.list[idx].size;
        }
    }

    /// The first line whose timestamp is at or after `t`.
    fn find_time(&self, t: Nanos) -> Mark {
        // The last file that starts before t holds the answer, or the
        // answer is the start of the file after it.
        let Some(i) = self
            .list
            .iter()
            .rposition(|f| first_time(&f.content).is_some_and(|ft| ft < t))
        else {
            return self.set_start();
        };
        let content = &self.list[i].content;
        let size = self.list[i].size;
        let (mut lo, mut hi) = (0u64, size);
        while hi - lo > (64 << 10) {
            let mid = lo + (hi - lo) / 2;
            let s = self.next_line_start(i, mid);
            if s >= hi {
                break;
            }
            match time_from(content, s, hi) {
                None => hi = mid,
                Some((ls, ts)) if ts < t => lo = ls,
                Some((ls, _)) => hi = ls,
            }
        }
        let mut buf = vec![0u8; 64 << 10];
        let mut found = None;
        let _ =
            scan_lines(
                content,
                lo,
                &mut buf,
                false,
                &mut |line, _, start| match cri::line_timestamp(line) {
                    Some(ts) if ts >= t => {
                        found = Some(start);
                        false
                    }
                    _ => true,
                },
            );
        match found {
            Some(off) => Mark {
                file: i as u32,
                offset: off,
            },
            None if i + 1 < self.list.len() => Mark {
                file: i as u32 + 1,
                offset: 0,
            },
            None => Mark {
                file: i as u32,
                offset: size,
            },
        }
    }

    /// Feeds the lines from `start` to the end of file `last` into `asm`,
    /// calling `on_event` for each event; `on_line` may stop the drive.
    /// Files before `last` are closed, so a trailing line without `\n` is
    /// delivered; in `last` it waits for its `\n` unless `last_closed` (the
    /// file will not grow any more). Returns the end mark reached, `None`
    /// when stopped early.
    fn drive(
        &mut self,
        start: Mark,
        last: u32,
        last_closed: bool,
        asm: &mut Assembler,
        on_event: &mut dyn FnMut(&Event<'_>, &[Option<u64>]),
        on_line: &mut dyn FnMut(&[u8], &Assembler) -> bool,
    ) -> Option<Mark> {
        let mut at = start;
        for idx in start.file as usize..=last as usize {
            let off = if idx == start.file as usize {
                start.offset
            } else {
                0
            };
            let closed = idx != last as usize || last_closed;
            let fps = &mut self.fps;
            let mut stopped = false;
            let r = scan_lines(
                &self.list[idx].content,
                off,
                &mut self.buf,
                closed,
                &mut |line, raw, lstart| {
                    if lstart == 0 && fps[idx].is_none() {
                        fps[idx] = fileset::fingerprint_of(raw);
                    }
                    if !on_line(line, asm) {
                        stopped = true;
                        return false;
                    }
                    let pos = LinePos {
                        file: idx as u32,
                        start: lstart,
                        end: lstart + raw.len() as u64,
                    };
                    let fps: &[Option<u64>] = fps;
                    asm.push(line, raw, pos, &mut |ev: &Event<'_>| on_event(ev, fps));
                    true
                },
            );
            let end = match r {
                Ok(end) => end,
                Err(e) => {
                    telemetry::read_failed(&self.list[idx].log.name, &e);
                    self.list[idx].size
                }
            };
            at = Mark {
                file: idx as u32,
                offset: end,
            };
            if stopped {
                return None;
            }
        }
        Some(at)
    }
}

/// The attempt's files, opened, as one consistent view.
struct View {
    /// The files in read order, up to the first that may still be written.
    opened: Vec<OpenLog>,
    /// A newer attempt exists, or the attempt is known to be finished.
    closed: bool,
    /// The directory changed while it was read.
    raced: bool,
    /// When a rotated file ends the view because it may still be written:
    /// the time to look again if no notification comes first.
    held: Option<Nanos>,
}

/// The attempt's files, opened, as one consistent [`View`].
///
/// Listing and opening are not atomic: a rotation between them shows a
/// name that now holds another file, or none. A second listing that differs
/// from the first reveals it (a rotation adds a name) even when every open
/// succeeded; the caller then looks again.
///
/// A rotated file that the runtime still writes ends the view: between the
/// rename and `ReopenContainerLog`, and while the runtime writes out what it
/// had buffered for the old file after opening the new one, lines still
/// land in it. A reader that went on into the newer file would skip them
/// (a follower, or a consumer resuming from a cursor in the newer file).
/// The runtime closing the old file is a notification (`IN_CLOSE_WRITE`).
/// Files the reader is already in (`reading`) are never cut off: what it
/// read there was served.
fn open_attempt(target: &Target, reading: &dyn Fn(&OpenLog) -> bool) -> Result<View, ReadError> {
    let attempt = target.ctx.attempt;
    let (names, closed) = list_attempt(target, attempt)?;
    let dir = [target.dir[0].as_str(), target.dir[1].as_str()];
    let mut opened = Vec::new();
    let mut raced = false;
    for f in &names {
        match fileset::open_log(&target.root, &dir, f) {
            Ok(o) => opened.push(o),
            Err(e) if e.is_not_found() => raced = true,
            Err(e) => telemetry::file_skipped(&f.name, &e),
        }
    }
    if !matches!(list_attempt(target, attempt), Ok((again, _)) if again == names) {
        raced = true;
    }
    let mut closed = closed;
    let mut held = None;
    let last = opened.len().saturating_sub(1);
    let cut = opened[..last]
        .iter()
        .enumerate()
        .find_map(|(i, o)| written_until_log(o).map(|t| (i, t)));
    if let Some((i, until)) = cut.filter(|&(i, _)| !opened[i + 1..].iter().any(reading)) {
        opened.truncate(i + 1);
        held = Some(until);
        // Not finished while a file of it still grows.
        closed = false;
    }
    Ok(View {
        opened,
        closed,
        raced,
        held,
    })
}

/// [`fileset::written_until`] of an opened file.
fn written_until_log(o: &OpenLog) -> Option<Nanos> {
    match &o.content {
        Content::Plain(f) => fileset::written_until(&o.file, f),
        Content::Mem(_) => None,
    }
}

/// A read of one attempt: its files, and the state that follow continues.
pub struct Session<'s> {
    target: Target,
    spec: ReadSpec,
    /// `cri` with no event filter: the historic part passes through in
    /// file order, without assembling events.
    raw: bool,
    files: Files,
    closed: bool,
    /// See [`View::held`].
    held: Option<Nanos>,
    out: Out<'s>,
}

impl<'s> Session<'s> {
    /// Opens the attempt's files as they are now.
    ///
    /// # Errors
    ///
    /// The container directory cannot be listed, or the attempt has no
    /// files, or the cursor is not one of this attempt.
    pub fn open(target: Target, spec: ReadSpec, sink: &'s mut dyn Sink) -> Result<Self, ReadError> {
        let attempt = target.ctx.attempt;
        let key = target.ctx.key();
        // A cursor's file stays in the view (see `open_attempt`).
        let resume = match &spec.cursor {
            Some(c) => Some(Cursor::decode(c, key)?.end.fingerprint),
            None => None,
        };
        let chunk = if spec.follow && spec.tail.is_some() {
            FOLLOW_CHUNK
        } else {
            CHUNK
        };
        let mut files = Files {
            list: Vec::new(),
            fps: Vec::new(),
            buf: vec![0u8; chunk],
        };
        let reading = |o: &OpenLog| resume.is_some() && o.fingerprint == resume;
        let mut view = open_attempt(&target, &reading)?;
        for _ in 1..RECONCILE_ROUNDS {
            if !view.raced {
                break;
            }
            view = open_attempt(&target, &reading)?;
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
            sink,
            format: spec.format,
            timestamps: spec.timestamps,
            members: target.ctx.json_members(),
            key,
            buf: Vec::new(),
            cursor: Vec::with_capacity(72),
            remaining: spec.limit_bytes,
            done: false,
            per_event: spec.per_event,
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
            closed,
            held,
            out,
        })
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
        let (start, sync, after, framed) = self.start_point();
        let (start, sync, after, framed) = self.tail_window(start, sync, after, framed);
        let mut asm = Assembler::new(
            self.spec.max_event_bytes,
            self.spec.format == Format::Cri,
            true,
        )
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
                .and_then(|m| self.pass(m, last, self.closed, &mut asm, &sel))
        } else {
            // With a newer attempt, this one will not grow any more.
            self.pass(start, last, self.closed, &mut asm, &sel)
        };
        match end {
            Some(e) if self.spec.follow && !self.closed => {
                self.files.close_all_but(e.file, self.held.is_some());
            }
            _ => self.files.close_all(),
        }
        if let Some(end) = end {
            if self.closed {
                self.finish(&mut asm, &sel, end);
            } else if self.spec.follow {
                self.out.flush();
                self.follow(asm, &sel, end, waiter);
            } else {
                // A multi-line event the container paused after is
                // complete; one still being written is held back, as an
                // open `P` chain is.
                self.expire(&mut asm, &sel);
            }
        }
        self.out.flush();
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

    /// Where the historic part starts: (mark, per-stream sync, events to
    /// skip, what a delimiter policy's framer knows there).
    fn start_point(&mut self) -> (Mark, [bool; 2], Option<End>, Start) {
        let mut start = self.files.set_start();
        let mut sync = [true; 2];
        let mut after = None;
        let mut framed = Start::Fresh;
        if let Some(c) = &self.spec.cursor {
            let c = Cursor::decode(c, self.target.ctx.key())
                .expect("the cursor was checked when the session was opened");
            if let Some(ef) = self.files.index_of(c.end.fingerprint) {
                let a = End {
                    at: Mark {
                        file: ef,
                        offset: c.end.offset,
                    },
                    sub: c.sub,
                };
                after = Some(a);
                if let Some(rf) = self.files.index_of(c.restart.fingerprint) {
                    let r = Mark {
                        file: rf,
                        offset: c.restart.offset,
                    };
                    if r <= a.at {
                        start = r;
                    }
                }
                if let Some(open) = c.open {
                    // Each stream resumes where its open event began; with
                    // nothing open, after the cursor's event. A head whose
                    // file is gone: from the oldest file.
                    framed = Start::Skip(open.map(|h| match h {
                        None => a.at,
                        Some(p) => self.files.index_of(p.fingerprint).map_or(
                            Mark::default(),
                            |file| Mark {
                                file,
                                offset: p.offset,
                            },
                        ),
                    }));
                }
            } else {
                telemetry::cursor_file_gone();
            }
        }
        if let Some(t) = self.spec.since {
            let m = self.files.find_time(t);
            if m > start {
                start = m;
                sync = self.files.sync_at(m);
                framed = Start::Unknown;
            }
        }
        (start, sync, after, framed)
    }

    /// With `tailLines`: where to start reading (a window at the end of the
    /// set, never before `floor`), its sync state, and the completion
    /// position after which to deliver.
    fn tail_window(
        &mut self,
        floor: Mark,
        floor_sync: [bool; 2],
        after: Option<End>,
        floor_framed: Start,
    ) -> (Mark, [bool; 2], Option<End>, Start) {
        let Some(n) = self.spec.tail else {
            return (floor, floor_sync, after, floor_framed);
        };
        let last = (self.files.list.len() - 1) as u32;
        if n == 0 {
            // Nothing historic: deliver only what comes after the end.
            let end = self.files.set_end();
            let after = Some(End {
                at: end,
                sub: u32::MAX,
            })
            .max(after);
            if end <= floor {
                return (floor, floor_sync, after, floor_framed);
            }
            return (end, self.files.sync_at(end), after, Start::Unknown);
        }
        let cap = n.min(1 << 24) as usize;
        let mut step: u64 = n.saturating_mul(512).max(64 << 10);
        loop {
            let w = self.files.back_off(step);
            let (w, sync, framed) = if w <= floor {
                (floor, floor_sync, floor_framed)
            } else {
                (w, self.files.sync_at(w), Start::Unknown)
            };
            let whole = w <= floor;
            let mut asm = Assembler::new(self.spec.max_event_bytes, false, true)
                .with_framing(self.spec.framing.clone(), framed);
            asm.set_synced(sync);
            asm.set_last_time(self.files.time_before(w));
            let sel = self.selector(after);
            let mut ring: std::collections::VecDeque<End> = std::collections::VecDeque::new();
            let mut on = |ev: &Event<'_>, _: &[Option<u64>]| {
                if sel.accepts(ev) {
                    if ring.len() == cap {
                        ring.pop_front();
                    }
                    ring.push_back(ev.end);
                }
            };
            let end = self
                .files
                .drive(w, last, self.closed, &mut asm, &mut on, &mut |_, _| true);
            if self.closed {
                if let Some(e) = end {
                    asm.finish(e, &mut |ev: &Event<'_>| on(ev, &[]));
                }
            } else if asm.deadline().is_some() {
                // The multi-line events the read will flush as paused.
                let now = cri::now_nanos().saturating_sub(crate::event::framing::GRACE);
                asm.expire(now, &mut |ev: &Event<'_>| on(ev, &[]));
            }
            if ring.len() >= cap {
                let t = ring[0];
                if whole || asm.dropped_end().is_none_or(|d| d < t.at) {
                    // Deliver from t on: everything after the one before it.
                    return (w, sync, Some(before(t)).max(after), framed);
                }
            } else if whole {
                return (w, sync, after, framed);
            }
            step = step.saturating_mul(4);
        }
    }

    /// The delivering pass from `start` to the end of file `last` (closed
    /// for good when `last_closed`); returns where it ended, `None` when
    /// output is done (limit, client gone, or past `untilTime`).
    fn pass(
        &mut self,
        start: Mark,
        last: u32,
        last_closed: bool,
        asm: &mut Assembler,
        sel: &Selector,
    ) -> Option<Mark> {
        let until = self.spec.until;
        let out = &mut self.out;
        let mut on_event = |ev: &Event<'_>, fps: &[Option<u64>]| {
            if sel.accepts(ev) {
                out.event(ev, fps);
            }
        };
        let mut done_flag = false;
        let r = self.files.drive(
            start,
            last,
            last_closed,
            asm,
            &mut on_event,
            &mut |line, a| {
                if done_flag {
                    return false;
                }
                if past_until(until, line, a) {
                    done_flag = true;
                    return false;
                }
                true
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
            let mut pos = if idx == start.file as usize {
                start.offset
            } else {
                0
            };
            let closed = idx != last as usize;
            let mut heads: [Option<u64>; 2] = [None, None];
            let mut emitted = pos;
            let content = &self.files.list[idx].content;
            let buf = &mut self.files.buf;
            let mut have = 0usize;
            loop {
                if have == buf.len() {
                    let n = (buf.len() * 2).clamp(FOLLOW_CHUNK, LINE_CAP);
                    if n == buf.len() {
                        // One line longer than the cap: pass it through.
                        emit_range(&mut self.out, content, emitted, pos);
                        self.out.raw(&buf[..have]);
                        pos += have as u64;
                        emitted = pos;
                        heads = [None, None];
                        have = 0;
                    } else {
                        buf.resize(n, 0);
                    }
                }
                let n = match content.read_at(pos + have as u64, &mut buf[have..]) {
                    Ok(n) => n,
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
                        if let Ok(l) = cri::parse_line(&buf[i..i + e]) {
                            let s = l.stream.index();
                            match l.tag {
                                Tag::Partial => {
                                    heads[s].get_or_insert(pos + i as u64);
                                }
                                Tag::Full => heads[s] = None,
                            }
                        }
                        i += e + 1;
                    }
                }
                let safe = heads
                    .iter()
                    .flatten()
                    .min()
                    .copied()
                    .unwrap_or(pos + complete as u64);
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
                if self.out.done {
                    return None;
                }
            }
            at = Mark {
                file: idx as u32,
                offset: if closed { pos } else { emitted },
            };
        }
        if self.out.done {
            return None;
        }
        Some(at)
    }

    /// Follows the attempt: see the module docs.
    fn follow(
        &mut self,
        mut asm: Assembler,
        sel: &Selector,
        mut end: Mark,
        waiter: &mut dyn Waiter,
    ) {
        let dir = [self.target.dir[0].clone(), self.target.dir[1].clone()];
        let active = format!("{}.log", self.target.ctx.attempt);
        self.files.buf = vec![0u8; FOLLOW_CHUNK];
        loop {
            // A multi-line event with no line for `flushAfter` is complete.
            self.expire(&mut asm, sel);
            self.out.flush();
            if self.out.done {
                return;
            }
            // Wake for a due multi-line event, or to look past a rotated
            // file whose writer went quiet without closing it.
            let due = asm
                .deadline()
                .map(|due| due.saturating_add(crate::event::framing::GRACE));
            let timeout = due.into_iter().chain(self.held).min().map(|due| {
                let wait = due.saturating_sub(cri::now_nanos());
                std::time::Duration::from_nanos(wait.max(0) as u64)
            });
            let mut wake = waiter.wait_for(timeout);
            if wake == Wake::Stop || self.out.done {
                return;
            }
            if wake == Wake::Timeout {
                // Read what came meanwhile, then flush what is due.
                wake = Wake::Modified;
            }
            let cur = end.file as usize;
            let mut handled = false;
            // The runtime still writes the rotated file this follower is
            // in (and the view ends there): read what it appended, and
            // look at the directory again only once it closed the file.
            if wake == Wake::Modified && self.held.is_some() {
                let f = &self.files.list[cur];
                if let Content::Plain(file) = &f.content {
                    if let Some(until) = fileset::written_until(&f.log, file) {
                        self.held = Some(until);
                        let size = self.files.list[cur].content.size();
                        self.files.list[cur].size = size.max(end.offset);
                        match self.pass(end, end.file, false, &mut asm, sel) {
                            Some(e) => end = e,
                            None => return,
                        }
                        self.out.flush();
                        if self.out.done {
                            return;
                        }
                        continue;
                    }
                }
            }
            // Fastest: the descriptor of the active file is still open from
            // the last read and nothing was renamed or deleted since, so it
            // is the file the runtime appends to.
            if wake == Wake::Modified
                && self.files.list[cur].log.rotated.is_none()
                && matches!(self.files.list[cur].content, Content::Plain(_))
            {
                let size = self.files.list[cur].content.size();
                if size >= end.offset {
                    self.files.list[cur].size = size;
                    match self.pass(end, end.file, false, &mut asm, sel) {
                        Some(e) => end = e,
                        None => return,
                    }
                    self.out.flush();
                    if self.out.done {
                        return;
                    }
                    continue;
                }
            }
            if wake == Wake::Modified && self.files.list[cur].log.rotated.is_none() {
                let rel = [dir[0].as_str(), dir[1].as_str(), active.as_str()];
                if let Ok(o) = self.target.root.open_file(&rel) {
                    // Same inode and same first line: inodes are reused
                    // after deletion, so the inode alone proves nothing.
                    let same = o.key == self.files.list[cur].key
                        && match self.files.fps[cur] {
                            Some(fp) => head_fingerprint(&o.file) == Some(fp),
                            None => true,
                        };
                    if same {
                        let f = &mut self.files.list[cur];
                        if o.size < end.offset {
                            // Truncated in place: what was open can no
                            // longer complete; the new content is a new file.
                            telemetry::truncated_under_reader(&f.log.name);
                            asm.reset();
                            let log = f.log.clone();
                            let idx = self.files.push(SessFile {
                                log,
                                key: o.key,
                                fingerprint: None,
                                content: Content::Plain(o.file),
                                size: o.size,
                            });
                            end = Mark {
                                file: idx,
                                offset: 0,
                            };
                        } else {
                            f.content = Content::Plain(o.file);
                            f.size = o.size;
                        }
                        match self.pass(end, end.file, false, &mut asm, sel) {
                            Some(e) => end = e,
                            None => return,
                        }
                        handled = true;
                    }
                }
            }
            if !handled {
                match self.reconcile(&mut asm, sel, end) {
                    Some(e) => end = e,
                    None => return,
                }
                if self.closed {
                    self.finish(&mut asm, sel, end);
                    return;
                }
            }
            // Keep only the active file open: a change notification (which
            // a deletion always causes) lands in `reconcile` first, and that
            // replaces or drops it.
            self.files.close_all_but(end.file, self.held.is_some());
            self.out.flush();
            if self.out.done {
                return;
            }
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

    /// After the directory changed: finishes the current file wherever it
    /// went, then reads the files that are new since. `None` ends the follow.
    fn reconcile(&mut self, asm: &mut Assembler, sel: &Selector, end: Mark) -> Option<Mark> {
        let cur = end.file as usize;
        let cur_key = self.files.list[cur].key;
        let cur_fp = self.files.fps[cur];
        // Nothing was read from the current file yet: not finding it again
        // loses nothing.
        let consumed_nothing = end.offset == 0 && cur_fp.is_none();
        let locate = |opened: &[OpenLog]| {
            // By inode and first line, then by first line alone (it may have
            // been compressed into a new file).
            opened
                .iter()
                .position(|o| {
                    o.key == cur_key
                        && !o.file.compressed
                        && (cur_fp.is_none() || o.fingerprint == cur_fp)
                })
                .or_else(|| {
                    cur_fp.and_then(|fp| opened.iter().position(|o| o.fingerprint == Some(fp)))
                })
        };
        // Look again while the directory changes under the listing, or while
        // the current file is missing (it may have been renamed meanwhile).
        let mut view = None;
        for round in 0..RECONCILE_ROUNDS {
            // An error: the container directory is gone.
            let v = open_attempt(&self.target, &|o: &OpenLog| {
                o.key == cur_key && (cur_fp.is_none() || o.fingerprint == cur_fp)
            })
            .ok()?;
            let pos = locate(&v.opened);
            if (!v.raced && (pos.is_some() || consumed_nothing)) || round + 1 == RECONCILE_ROUNDS {
                view = Some((v, pos));
                break;
            }
        }
        let (v, pos) = view.expect("the last round always yields a view");
        let mut opened = v.opened;
        self.closed = v.closed;
        self.held = v.held;
        let mut end = end;
        let mut rest: Vec<OpenLog> = Vec::new();
        match pos {
            Some(p) => {
                let mut after: Vec<OpenLog> = opened.drain(p + 1..).collect();
                let o = opened.pop().expect("position p exists");
                let f = &mut self.files.list[cur];
                if o.size < end.offset && !o.file.compressed {
                    telemetry::truncated_under_reader(&f.log.name);
                    asm.reset();
                    after.insert(0, o);
                } else {
                    f.content = o.content;
                    f.size = o.size;
                    f.log = o.file;
                    // With files after it, it is closed for good: a trailing
                    // line without '\n' will never be completed.
                    let closed = !after.is_empty() || self.closed;
                    end = self.pass(end, end.file, closed, asm, sel)?;
                }
                rest = after;
            }
            None => {
                if let Some(t) = opened
                    .iter()
                    .position(|o| o.key == cur_key && !o.file.compressed)
                {
                    // Same inode, another first line: truncated in place
                    // and written again. It is read from its start.
                    telemetry::truncated_under_reader(&self.files.list[cur].log.name);
                    asm.reset();
                    rest = opened.drain(t..).collect();
                } else {
                    if !consumed_nothing {
                        telemetry::follow_lost_file(&self.files.list[cur].log.name);
                    }
                    for o in opened {
                        let known =
                            o.fingerprint.is_some() && self.files.fps.contains(&o.fingerprint);
                        if !known {
                            rest.push(o);
                        }
                    }
                }
            }
        }
        let n = rest.len();
        for (i, o) in rest.into_iter().enumerate() {
            let idx = self.files.push(sess_file(o));
            let start = Mark {
                file: idx,
                offset: 0,
            };
            end = self.pass(start, idx, i + 1 < n || self.closed, asm, sel)?;
        }
        // A later file in `rest` may have ended its predecessor: the last
        // one pushed is now the current file.
        Some(end)
    }
}

/// The completion position just before `t`, so that `ev.end > result`
/// selects `t` and what follows.
fn before(t: End) -> End {
    if t.sub > 0 {
        End {
            at: t.at,
            sub: t.sub - 1,
        }
    } else if t.at.offset > 0 {
        End {
            at: Mark {
                file: t.at.file,
                offset: t.at.offset - 1,
            },
            sub: u32::MAX,
        }
    } else {
        End { at: t.at, sub: 0 }
    }
}

/// Serves bytes `[from, to)` of a file unchanged.
fn emit_range(out: &mut Out<'_>, content: &Content, from: u64, to: u64) {
    let mut pos = from;
    let mut block = vec![0u8; (to.saturating_sub(from)).min(1 << 20) as usize];
    while pos < to && !out.done {
        let want = ((to - pos) as usize).min(block.len());
        match content.read_at(pos, &mut block[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.raw(&block[..n]);
                pos += n as u64;
            }
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

fn sess_file(o: OpenLog) -> SessFile {
    SessFile {
        log: o.file,
        key: o.key,
        fingerprint: o.fingerprint,
        content: o.content,
        size: o.size,
    }
}

/// The fingerprint of an open plain file's first line.
fn head_fingerprint(f: &std::fs::File) -> Option<u64> {
    use std::os::unix::fs::FileExt as _;
    let mut head = [0u8; fileset::FINGERPRINT_BYTES];
    let n = f.read_at(&mut head, 0).ok()?;
    fileset::fingerprint_of(&head[..n])
}

/// The timestamp of the first timestamped line of a file.
fn first_time(content: &Content) -> Option<Nanos> {
    time_from(content, 0, u64::MAX).map(|(_, t)| t)
}

/// The first line at or after line start `from` (and before `hi`) that has
/// a valid timestamp: its start and time.
fn time_from(content: &Content, from: u64, hi: u64) -> Option<(u64, Nanos)> {
    let mut buf = vec![0u8; 16 << 10];
    let mut found = None;
    let mut looked = 0u64;
    let _ = scan_lines(content, from, &mut buf, false, &mut |line, raw, start| {
        if start >= hi {
            return false;
        }
        if let Some(t) = cri::line_timestamp(line) {
            found = Some((start, t));
            return false;
        }
        looked += raw.len() as u64;
        looked < (1 << 20)
    });
    found
}

/// The first and last timestamps of a log file, for the inventory; reads
/// one block at each end (compressed files: the first line only).
pub(crate) fn file_time_span(
    root: &SafeRoot,
    dir: &[&str],
    file: &LogFile,
) -> (Option<Nanos>, Option<Nanos>) {
    if file.compressed {
        let mut rel: Vec<&str> = dir.to_vec();
        rel.push(&file.name);
        let Ok(o) = root.open_file(&rel) else {
            return (None, None);
        };
        let mut head = vec![0u8; 4096];
        let Ok(mut dec) = fileset::decoder(file, &o.file) else {
            return (None, None);
        };
        let n = std::io::Read::read(&mut dec, &mut head).unwrap_or(0);
        let first = head[..n]
            .split(|&b| b == b'\n')
            .next()
            .and_then(cri::line_timestamp);
        return (first, None);
    }
    let Ok(o) = fileset::open_log(root, dir, file) else {
        return (None, None);
    };
    let first = first_time(&o.content);
    let mut last = None;
    // Only complete lines count: start after the last '\n'.
    let mut end = o.size;
    let mut byte = [0u8; 1];
    while end > 0 {
        match o.content.read_at(end - 1, &mut byte) {
            Ok(1) if byte[0] == b'\n' => break,
            Ok(1) if o.size - end < (1 << 20) => end -= 1,
            _ => return (first, None),
        }
    }
    let _ = scan_back(&o.content, end, 1 << 20, &mut |line, _| {
        last = cri::line_timestamp(line);
        last.is_none()
    });
    (first, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write as _;
    use std::path::{Path, PathBuf};

    struct VecSink(Vec<u8>);

    impl Sink for VecSink {
        fn send(&mut self, chunk: Bytes) -> bool {
            self.0.extend_from_slice(&chunk);
            true
        }
    }

    const POD: &str = "ns_pod_uid";
    const CTR: &str = "c";

    fn target(root: &Path, attempt: u32) -> Target {
        Target {
            root: Arc::new(SafeRoot::open(root).unwrap()),
            dir: [POD.into(), CTR.into()],
            finished: Default::default(),
            ctx: Context {
                namespace: "ns".into(),
                pod: "pod".into(),
                uid: "uid".into(),
                container: CTR.into(),
                attempt,
                ..Context::default()
            },
        }
    }

    struct NoWait;
    impl Waiter for NoWait {
        fn wait(&mut self) -> Wake {
            Wake::Stop
        }
    }

    fn read(root: &Path, spec: ReadSpec) -> Vec<u8> {
        let mut sink = VecSink(Vec::new());
        let s = Session::open(target(root, 0), spec, &mut sink).unwrap();
        s.run(&mut NoWait);
        sink.0
    }

    fn json_events(out: &[u8]) -> Vec<serde_json::Value> {
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    fn line(ts: u64, stream: &str, tag: &str, content: &str) -> String {
        let secs = ts / 1000;
        let ms = ts % 1000;
        format!(
            "2026-11-21T05:{:02}:{:02}.{:03}000000Z {stream} {tag} {content}\n",
            (secs / 60) % 60,
            secs % 60,
            ms
        )
    }

    /// The model of one container directory: what was written, and the
    /// events a reader must produce.
    struct Model {
        dir: PathBuf,
        clock: u64,
        rotations: u32,
        open: [Vec<String>; 2],
        events: Vec<String>,
        written: String,
        /// The runtime's descriptor and the name of the file it is on now:
        /// it follows a rename until the runtime reopens.
        writer: Option<(std::fs::File, String)>,
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// stream, content, number of P chunks before the F.
        Event(bool, String, usize),
        /// Starts a chain on a stream: P chunks only.
        Partial(bool, String),
        /// Rename 0.log away, then create a new 0.log (or not yet). The
        /// runtime's descriptor follows the rename: lines go on landing in
        /// the renamed file until [`Op::Reopened`].
        Rotate { reopen: bool },
        /// The runtime closes the file it wrote (it had written out what
        /// it buffered for it) and writes `0.log` from now on.
        Reopened,
        /// Compress the oldest plain rotated file.
        Compress,
        /// Many appends before the reader looks.
        Burst(u8),
    }

    impl Model {
        fn new(root: &Path) -> Self {
            let dir = root.join(POD).join(CTR);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("0.log"), b"").unwrap();
            Self {
                dir,
                clock: 0,
                rotations: 0,
                open: [vec![], vec![]],
                events: vec![],
                written: String::new(),
                writer: None,
            }
        }

        fn append(&mut self, s: &str) {
            self.written.push_str(s);
            let (f, _) = self.writer.get_or_insert_with(|| {
                let f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(self.dir.join("0.log"))
                    .unwrap();
                (f, "0.log".to_owned())
            });
            f.write_all(s.as_bytes()).unwrap();
        }

        fn tick(&mut self) -> u64 {
            self.clock += 7;
            self.clock
        }

        fn apply(&mut self, op: &Op) -> Wake {
            match op {
                Op::Event(err, content, chunks) => {
                    let name = if *err { "stderr" } else { "stdout" };
                    let s = usize::from(*err);
                    let mut text = String::new();
                    let mut whole: String = self.open[s].concat();
                    self.open[s].clear();
                    let n = (*chunks).min(content.len());
                    let mut rest = content.as_str();
                    for _ in 0..n {
                        let cut = rest.len() / 2;
                        if cut == 0 {
                            break;
                        }
                        let t = self.tick();
                        text.push_str(&line(t, name, "P", &rest[..cut]));
                        whole.push_str(&rest[..cut]);
                        rest = &rest[cut..];
                    }
                    let t = self.tick();
                    text.push_str(&line(t, name, "F", rest));
                    whole.push_str(rest);
                    self.events.push(format!("{name}:{whole}"));
                    self.append(&text);
                    Wake::Modified
                }
                Op::Partial(err, content) => {
                    let name = if *err { "stderr" } else { "stdout" };
                    let t = self.tick();
                    let l = line(t, name, "P", content);
                    self.open[usize::from(*err)].push(content.clone());
                    self.append(&l);
                    Wake::Modified
                }
                Op::Rotate { reopen } => {
                    let active = self.dir.join("0.log");
                    if active.exists() {
                        self.rotations += 1;
                        let to = self
                            .dir
                            .join(format!("0.log.20261121-{:06}", self.rotations));
                        std::fs::rename(&active, &to).unwrap();
                        if let Some((_, name)) = &mut self.writer {
                            if name == "0.log" {
                                *name = to.file_name().unwrap().to_str().unwrap().to_owned();
                            }
                        }
                    }
                    if *reopen {
                        std::fs::write(&active, b"").unwrap();
                    }
                    Wake::Changed
                }
                Op::Reopened => {
                    // Closing is a notification (`IN_CLOSE_WRITE`).
                    self.writer = None;
                    Wake::Modified
                }
                Op::Compress => {
                    let mut names: Vec<String> = std::fs::read_dir(&self.dir)
                        .unwrap()
                        .map(|e| e.unwrap().file_name().into_string().unwrap())
                        .filter(|n| n.starts_with("0.log.") && !n.ends_with(".gz"))
                        // Never the file the runtime still writes.
                        .filter(|n| self.writer.as_ref().is_none_or(|(_, w)| w != n))
                        .collect();
                    names.sort();
                    if let Some(n) = names.first() {
                        let data = std::fs::read(self.dir.join(n)).unwrap();
                        let tmp = self.dir.join(format!("{n}.gz.tmp"));
                        let mut enc = flate2::write::GzEncoder::new(
                            std::fs::File::create(&tmp).unwrap(),
                            flate2::Compression::fast(),
                        );
                        enc.write_all(&data).unwrap();
                        enc.finish().unwrap();
                        std::fs::rename(&tmp, self.dir.join(format!("{n}.gz"))).unwrap();
                        std::fs::remove_file(self.dir.join(n)).unwrap();
                    }
                    Wake::Changed
                }
                Op::Burst(n) => {
                    for i in 0..*n {
                        self.apply(&Op::Event(
                            i % 3 == 0,
                            format!("burst{i}"),
                            usize::from(i % 2),
                        ));
                    }
                    Wake::Modified
                }
            }
        }
    }

    fn text_events(out: &[u8], streams: &[String]) -> Vec<String> {
        // Text output has no stream; pair it with the expected streams.
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .zip(streams)
            .map(|(l, s)| format!("{}:{}", s, String::from_utf8_lossy(l)))
            .collect()
    }

    /// Follows while a script of operations runs; each wait applies one.
    struct Script<'m> {
        model: &'m mut Model,
        ops: Vec<Op>,
        next: usize,
    }

    impl Waiter for Script<'_> {
        fn wait(&mut self) -> Wake {
            let Some(op) = self.ops.get(self.next).cloned() else {
                return Wake::Stop;
            };
            self.next += 1;
            self.model.apply(&op)
        }
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (any::<bool>(), "[a-z]{1,12}", 0usize..3).prop_map(|(e, c, n)| Op::Event(e, c, n)),
            1 => (any::<bool>(), "[a-z]{1,6}").prop_map(|(e, c)| Op::Partial(e, c)),
            2 => any::<bool>().prop_map(|reopen| Op::Rotate { reopen }),
            2 => Just(Op::Reopened),
            1 => Just(Op::Compress),
            1 => (1u8..20).prop_map(Op::Burst),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Model-based: a follower sees exactly the written events, in order,
        /// across rotations (with or without an immediate reopen),
        /// compression and P chains that span files; and a cursor taken at
        /// any event resumes with exactly the events after it.
        #[test]
        fn follow_matches_model(ops in prop::collection::vec(arb_op(), 1..40), pick in any::<prop::sample::Index>()) {
            let dir = tempfile::tempdir().unwrap();
            let mut model = Model::new(dir.path());
            let spec = ReadSpec { follow: true, format: Format::Json, ..ReadSpec::default() };
            let mut sink = VecSink(Vec::new());
            let s = Session::open(target(dir.path(), 0), spec, &mut sink).unwrap();
            let mut script = Script { model: &mut model, ops: ops.clone(), next: 0 };
            s.run(&mut script);
            let got: Vec<serde_json::Value> = json_events(&sink.0);
            let got_s: Vec<String> = got.iter().map(|v| format!("{}:{}",
                v["stream"].as_str().unwrap(), v["log"].as_str().unwrap())).collect();
            // Only events whose F was written are due; open chains wait.
            prop_assert_eq!(&got_s, &model.events);

            // The same operations followed as `cri` without filters: the
            // stored lines pass through in the order they were written.
            let dir2 = tempfile::tempdir().unwrap();
            let mut model2 = Model::new(dir2.path());
            let spec = ReadSpec { follow: true, format: Format::Cri, ..ReadSpec::default() };
            let mut sink2 = VecSink(Vec::new());
            let s2 = Session::open(target(dir2.path(), 0), spec, &mut sink2).unwrap();
            let mut script2 = Script { model: &mut model2, ops, next: 0 };
            s2.run(&mut script2);
            // Every stored line exactly once, except lines of chains still
            // open, which wait for their F.
            let check_raw = |out: &[u8], model: &Model| -> Result<(), TestCaseError> {
                let out = String::from_utf8_lossy(out);
                let got: Vec<&str> = out.lines().collect();
                let mut seen = std::collections::HashSet::new();
                prop_assert!(got.iter().all(|l| seen.insert(*l)), "a line twice");
                let written: Vec<&str> = model.written.lines().collect();
                prop_assert!(got.iter().all(|l| written.contains(l)), "a line never written");
                let missing: Vec<&&str> = written.iter().filter(|l| !seen.contains(**l)).collect();
                let pending: usize = model.open.iter().map(Vec::len).sum();
                prop_assert!(missing.len() <= pending, "missing {:?}", missing);
                prop_assert!(missing.iter().all(|l| l.split(' ').nth(2) == Some("P")));
                Ok(())
            };
            check_raw(&sink2.0, &model2)?;
            let raw = read(dir2.path(), ReadSpec { format: Format::Cri, ..ReadSpec::default() });
            check_raw(&raw, &model2)?;

            // The active file may be missing (rotated, not reopened): reads
            // of the final tree then cover the rotated files only.
            let all = read(dir.path(), ReadSpec { format: Format::Json, ..ReadSpec::default() });
            let all = json_events(&all);
            let all_s: Vec<String> = all.iter().map(|v| format!("{}:{}",
                v["stream"].as_str().unwrap(), v["log"].as_str().unwrap())).collect();
            prop_assert_eq!(&all_s, &model.events);
            if !got.is_empty() {
                let k = pick.index(got.len());
                let c = got[k]["cursor"].as_str().unwrap().to_owned();
                let rest = read(dir.path(), ReadSpec { format: Format::Json, cursor: Some(c), ..ReadSpec::default() });
                let rest: Vec<String> = json_events(&rest).iter().map(|v| format!("{}:{}",
                    v["stream"].as_str().unwrap(), v["log"].as_str().unwrap())).collect();
                prop_assert_eq!(&rest[..], &model.events[k + 1..]);
                // Text output of the same tree, for the tail of it.
                let n = 3u64;
                let tail = read(dir.path(), ReadSpec { tail: Some(n), ..ReadSpec::default() });
                let from = model.events.len().saturating_sub(n as usize);
                let streams: Vec<String> = model.events[from..].iter()
                    .map(|e| e.split(':').next().unwrap().to_owned()).collect();
                prop_assert_eq!(text_events(&tail, &streams), model.events[from..].to_vec());
            }
        }
    }

    fn write_tree(root: &Path, files: &[(&str, &str)]) {
        let dir = root.join(POD).join(CTR);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, content) in files {
            std::fs::write(dir.join(name), content).unwrap();
        }
    }

    fn text(out: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(out)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn tail_counts_events_and_spans_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut rotated = String::new();
        for i in 0..50 {
            rotated.push_str(&line(i * 10, "stdout", "F", &format!("old{i}")));
        }
        rotated.push_str(&line(600, "stdout", "P", "span-"));
        let mut active = line(610, "stderr", "F", "err");
        active.push_str(&line(620, "stdout", "F", "end"));
        for i in 0..5 {
            active.push_str(&line(700 + i * 10, "stdout", "F", &format!("new{i}")));
        }
        write_tree(
            dir.path(),
            &[("0.log.20261121-000000", &rotated), ("0.log", &active)],
        );
        let t = |n: u64, stream: Option<Stream>| {
            text(&read(
                dir.path(),
                ReadSpec {
                    tail: Some(n),
                    stream,
                    ..ReadSpec::default()
                },
            ))
        };
        assert_eq!(t(2, None), vec!["new3", "new4"]);
        assert_eq!(
            t(7, None),
            vec!["err", "span-end", "new0", "new1", "new2", "new3", "new4"]
        );
        assert_eq!(
            t(7, Some(Stream::Stdout))[..2],
            ["old49".to_owned(), "span-end".to_owned()]
        );
        assert_eq!(t(0, None), Vec::<String>::new());
        assert_eq!(t(1000, None).len(), 57);
    }

    #[test]
    fn since_and_until_binary_search() {
        let dir = tempfile::tempdir().unwrap();
        let mut content = String::new();
        // Large enough to exercise the binary search (> 64 KiB).
        for i in 0..5000u64 {
            content.push_str(&line(
                i * 10,
                if i % 7 == 0 { "stderr" } else { "stdout" },
                "F",
                &format!("event-{i:05}-padding-padding-padding"),
            ));
        }
        write_tree(dir.path(), &[("0.log", &content)]);
        let ts = |ms: u64| {
            let l = line(ms, "stdout", "F", "");
            cri::line_timestamp(l.as_bytes()).unwrap()
        };
        let out = text(&read(
            dir.path(),
            ReadSpec {
                since: Some(ts(25_000)),
                until: Some(ts(25_050)),
                ..ReadSpec::default()
            },
        ));
        assert_eq!(
            out,
            (2500..2505)
                .map(|i| format!("event-{i:05}-padding-padding-padding"))
                .collect::<Vec<_>>()
        );
        let out = text(&read(
            dir.path(),
            ReadSpec {
                since: Some(ts(49_985)),
                ..ReadSpec::default()
            },
        ));
        assert_eq!(out, vec!["event-04999-padding-padding-padding"]);
        let out = text(&read(
            dir.path(),
            ReadSpec {
                since: Some(ts(0)),
                tail: Some(1),
                ..ReadSpec::default()
            },
        ));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn trailing_chain_is_partial_once_a_newer_attempt_exists() {
        let dir = tempfile::tempdir().unwrap();
        let c = format!(
            "{}{}",
            line(0, "stdout", "F", "a"),
            line(10, "stdout", "P", "cut")
        );
        write_tree(dir.path(), &[("0.log", &c)]);
        let out = read(
            dir.path(),
            ReadSpec {
                format: Format::Json,
                ..ReadSpec::default()
            },
        );
        assert_eq!(json_events(&out).len(), 1);
        write_tree(dir.path(), &[("1.log", &line(20, "stdout", "F", "next"))]);
        let out = json_events(&read(
            dir.path(),
            ReadSpec {
                format: Format::Json,
                ..ReadSpec::default()
            },
        ));
        assert_eq!(out.len(), 2);
        assert_eq!(out[1]["log"], "cut");
        assert_eq!(out[1]["partial"], true);
    }
}
