//! Rendering accepted events into the chunks a [`Sink`] gets,
//! with `limitBytes` applied in one place.

use super::*;

/// Output is handed to the sink in chunks of about this size. Chunk
/// buffers stay below glibc's mmap threshold (128 KiB), so they come from
/// the heap and are reused instead of being mapped and faulted in each time.
pub(super) const OUT_CHUNK: usize = 64 << 10;

/// Capacity of a fresh chunk buffer: a chunk plus room for a typical line.
pub(super) const OUT_CAPACITY: usize = OUT_CHUNK + (16 << 10);

/// The size an event takes in `json`: its members, and a buffer reused to
/// render it.
pub(super) struct JsonSize {
    pub(super) members: Vec<u8>,
    pub(super) scratch: Vec<u8>,
}

impl JsonSize {
    fn of(&mut self, ev: &Event<'_>, cursor: &[u8]) -> usize {
        self.scratch.clear();
        render::render(
            &mut self.scratch,
            ev,
            Format::Json,
            false,
            cursor,
            &self.members,
        );
        self.scratch.len()
    }
}

/// Renders accepted events and hands chunks to the sink.
pub(super) struct Out<'s> {
    pub(super) sink: Box<dyn Sink + Send + 's>,
    pub(super) format: Format,
    pub(super) timestamps: bool,
    pub(super) members: Vec<u8>,
    /// `Proto` with `limitBytes`: the limit counts the bytes of the `json`
    /// event, so both APIs stop at the same event.
    pub(super) limit_as_json: Option<JsonSize>,
    pub(super) key: u64,
    pub(super) buf: Vec<u8>,
    /// Scratch space for one event's cursor.
    pub(super) cursor: Vec<u8>,
    pub(super) remaining: Option<u64>,
    /// No more output: limit reached or client gone.
    pub(super) done: bool,
    /// Each event goes to the sink alone ([`ReadSpec::per_event`]).
    pub(super) per_event: bool,
    /// Bytes handed to the sink so far (a follow step's budget counts them).
    pub(super) handed: u64,
    /// Events in the chunk being built (lines, for `cri` passed through),
    /// counted as served when it is handed over; a merge counts its own.
    pub(super) events: u64,
}

impl Out<'_> {
    pub(super) fn event(&mut self, ev: &Event<'_>, fps: &[Option<u64>]) {
        if self.done {
            return;
        }
        self.cursor.clear();
        if self.format.structured() {
            cursor_of(self.key, ev, fps).encode_into(&mut self.cursor);
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
        if self.limit_reached(ev, before) {
            return;
        }
        if !self.per_event {
            self.events += 1;
        }
        if self.per_event {
            // One event, copied out so the buffer keeps its capacity.
            let event = Bytes::copy_from_slice(&self.buf);
            self.buf.clear();
            self.handed += event.len() as u64;
            if !self.sink.send_event(ev.time, event) {
                self.done = true;
            }
        } else if self.buf.len() >= OUT_CHUNK {
            self.flush();
        }
    }

    /// `limitBytes`: counts event `ev`, rendered from `before` on; when it
    /// does not fit, keeps what fits (nothing of a structured event), hands
    /// it over and ends the output.
    fn limit_reached(&mut self, ev: &Event<'_>, before: usize) -> bool {
        let Some(rem) = self.remaining else {
            return false;
        };
        let n = match &mut self.limit_as_json {
            Some(size) => size.of(ev, &self.cursor),
            None => self.buf.len() - before,
        } as u64;
        if n <= rem {
            self.remaining = Some(rem - n);
            return false;
        }
        if self.format.structured() {
            // Whole events only: a cut JSON object helps no one.
            self.buf.truncate(before);
        } else {
            self.buf.truncate(before + rem as usize);
            // The part that fits is served.
            if rem > 0 && !self.per_event {
                self.events += 1;
            }
        }
        self.remaining = Some(0);
        if self.per_event && !self.buf.is_empty() {
            // The cut piece keeps its time, so a merge keeps its place.
            let piece = Bytes::copy_from_slice(&self.buf);
            self.buf.clear();
            self.handed += piece.len() as u64;
            self.sink.send_event(ev.time, piece);
        }
        self.flush();
        self.done = true;
        true
    }

    /// True once no more output is wanted: the limit was reached, or the
    /// client is gone (asked of the sink).
    pub(super) fn stopped(&mut self) -> bool {
        if !self.done && self.sink.is_closed() {
            self.done = true;
        }
        self.done
    }

    /// Passes stored bytes through unchanged (`cri` without filters).
    pub(super) fn raw(&mut self, bytes: &[u8]) {
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
            self.events += memchr::memchr_iter(b'\n', &bytes[..n]).count() as u64;
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

    pub(super) fn flush(&mut self) {
        if self.buf.is_empty() || self.done {
            return;
        }
        // A small chunk (a follower's few new lines) is copied out, so it
        // does not carry the buffer's whole capacity while it waits in the
        // client's queue; a full one takes the buffer along.
        let chunk = if self.buf.len() < OUT_CHUNK / 2 {
            let c = Bytes::copy_from_slice(&self.buf);
            self.buf.clear();
            c
        } else {
            Bytes::from(std::mem::take(&mut self.buf))
        };
        self.handed += chunk.len() as u64;
        let events = std::mem::take(&mut self.events);
        if self.sink.send(chunk) {
            telemetry::served_events(self.format.name(), events);
        } else {
            self.done = true;
        }
    }

    /// Flushes, and gives the buffer's memory back (a follower between
    /// steps holds none).
    pub(super) fn release(&mut self) {
        self.flush();
        self.buf = Vec::new();
    }
}

/// The cursor of event `ev`: its positions, by file fingerprint (`fps`, by
/// file index).
fn cursor_of(key: u64, ev: &Event<'_>, fps: &[Option<u64>]) -> Cursor {
    let fp = |i: u32| fps.get(i as usize).copied().flatten().unwrap_or(0);
    let point = |m: Mark| FilePoint {
        fingerprint: fp(m.file),
        offset: m.offset,
    };
    Cursor {
        key,
        end: point(ev.end.at),
        sub: ev.end.sub,
        restart: point(ev.restart),
        open: ev.framed.then(|| ev.open.map(|h| h.map(point))),
    }
}

/// Serves bytes `[from, to)` of a file unchanged.
pub(super) fn emit_range(out: &mut Out<'_>, content: &Content, from: u64, to: u64) {
    let mut pos = from;
    let mut block = vec![0u8; (to.saturating_sub(from)).min(1 << 20) as usize];
    while pos < to && !out.done {
        let want = ((to - pos) as usize).min(block.len());
        match content.read_at(pos, &mut block[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                telemetry::read_bytes(n as u64);
                out.raw(&block[..n]);
                pos += n as u64;
            }
        }
    }
}
