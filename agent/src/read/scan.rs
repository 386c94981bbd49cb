//! Scanning a file's lines forwards and backwards, and the timestamps at
//! its ends.

use super::*;

/// A line callback: the line without `\n`, with it, and its start and
/// end offsets. A line longer than the scan's cap comes cut to it (with a
/// `\n` added), its end still the real one.
pub(crate) type LineFn<'a> = dyn FnMut(&[u8], &[u8], u64, u64) -> bool + 'a;

/// The longest line a scan keeps whole by default (the lifecycle's scans,
/// time searches): the longest event's content and a CRI prefix.
pub(crate) const DEFAULT_LINE_CAP: usize = crate::event::DEFAULT_MAX_EVENT_BYTES + LINE_SLACK;

/// Room for a CRI line's prefix (time, stream, tag) beside its content.
pub(crate) const LINE_SLACK: usize = 4 << 10;

/// Scans the complete lines of `content` from `start`. `on_line` gets the
/// line without `\n`, the line with it, and its start and end offsets;
/// it returns false to stop. Returns the offset after the last line
/// consumed. When `closed`, trailing bytes without `\n` are delivered as a
/// line too.
pub(crate) fn scan_lines(
    content: &Content,
    start: u64,
    buf: &mut Vec<u8>,
    closed: bool,
    on_line: &mut LineFn<'_>,
) -> std::io::Result<u64> {
    let how = Scan {
        closed,
        budget: None,
        line_cap: DEFAULT_LINE_CAP,
    };
    scan_lines_within(content, start, buf, how, on_line).map(|s| s.end)
}

/// How [`scan_lines_within`] scans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The file will not grow: trailing bytes without `\n` are a line.
    pub(crate) closed: bool,
    /// Read no more once this many bytes were read and a line delivered.
    pub(crate) budget: Option<u64>,
    /// A longer line is delivered cut to this many bytes; the rest of it
    /// is read past, never held.
    pub(crate) line_cap: usize,
}

/// Where [`scan_lines_within`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Scanned {
    /// The offset after the last line consumed.
    pub(crate) end: u64,
    /// It stopped there because its budget was read (the file may go on):
    /// the next scan starts at `end`.
    pub(crate) paused: bool,
}

/// [`scan_lines`], as `how` says: within a budget (the bytes of a line
/// not complete in the buffer when it is spent are left for the next
/// scan, read again: at most one line), and with the buffer bounded by a
/// cap whatever the file holds: a longer line is delivered in parts of at
/// most the cap, as the runtime would have written it, `P` lines with its
/// time and stream and its tag on the last (see [`Long`]). Nothing of it
/// is lost; its events are cut at `maxEventBytes` as any.
pub(crate) fn scan_lines_within(
    content: &Content,
    start: u64,
    buf: &mut Vec<u8>,
    how: Scan,
    on_line: &mut LineFn<'_>,
) -> std::io::Result<Scanned> {
    let Scan {
        closed,
        budget,
        line_cap,
    } = how;
    let cap = line_cap.max(FOLLOW_CHUNK);
    let mut pos = start; // file offset of buf[0]
    let mut have = 0usize;
    // The line longer than the cap being delivered in parts.
    let mut long: Option<Long> = None;
    let mut part = Vec::new();
    let done = |end| Ok(Scanned { end, paused: false });
    loop {
        if long.is_none() && budget.is_some_and(|b| pos > start && pos + have as u64 - start >= b) {
            return Ok(Scanned {
                end: pos,
                paused: true,
            });
        }
        if have == buf.len() {
            if buf.len() >= cap {
                // A line longer than the cap: what is buffered is a part.
                if long.is_none() {
                    long = Long::at(&buf[..have], pos);
                }
                let keep = match &long {
                    Some(l) => {
                        let from = if l.start == pos { l.prefix.len() } else { 0 };
                        let line = l.part(&mut part, b'P', &buf[from..have]);
                        on_line(line, &buf[..have], pos, pos + have as u64)
                    }
                    // Not a CRI line: its pieces are malformed lines.
                    None => on_line(&buf[..have], &buf[..have], pos, pos + have as u64),
                };
                if !keep {
                    return done(long.map_or(pos, |l| l.start));
                }
                pos += have as u64;
                have = 0;
            } else {
                let n = (buf.len() * 2).clamp(FOLLOW_CHUNK, cap);
                buf.resize(n, 0);
            }
        }
        // Within the budget, no more is read than it leaves; a first line
        // longer than it is read whole (past it, the scan paused above).
        let room = buf.len() - have;
        let want = match budget.map(|b| b.saturating_sub(pos + have as u64 - start)) {
            Some(left) if left > 0 && long.is_none() => (left.min(room as u64)) as usize,
            _ => room,
        };
        let n = content.read_at(pos + have as u64, &mut buf[have..have + want])?;
        telemetry::read_bytes(n as u64);
        if n == 0 {
            if !closed {
                // An incomplete line waits for its end, a long one from
                // its start.
                return done(long.map_or(pos, |l| l.start));
            }
            if have > 0 || long.is_some() {
                let end = pos + have as u64;
                let mut raw = buf[..have].to_vec();
                raw.push(b'\n');
                let keep = match &long {
                    Some(l) => {
                        let from = if l.start == pos { l.prefix.len() } else { 0 };
                        let line = l.part(&mut part, l.tag, &buf[from..have]);
                        on_line(line, &raw, pos, end)
                    }
                    None => on_line(&raw[..have], &raw, pos, end),
                };
                if !keep {
                    return done(long.map_or(pos, |l| l.start));
                }
                pos = end;
            }
            return done(pos);
        }
        let filled = have + n;
        let mut i = 0usize;
        while let Some(nl) = memchr::memchr(b'\n', &buf[i..filled]) {
            let end = i + nl + 1;
            let (lstart, keep) = match long.take() {
                // The last part of a long line.
                Some(l) => {
                    let from = if l.start == pos { l.prefix.len() } else { 0 };
                    let line = l.part(&mut part, l.tag, &buf[from..end - 1]);
                    (l.start, on_line(line, &buf[..end], pos, pos + end as u64))
                }
                None => (
                    pos + i as u64,
                    on_line(
                        &buf[i..end - 1],
                        &buf[i..end],
                        pos + i as u64,
                        pos + end as u64,
                    ),
                ),
            };
            if !keep {
                return done(lstart);
            }
            i = end;
        }
        // Move the incomplete tail to the front.
        buf.copy_within(i..filled, 0);
        pos += i as u64;
        have = filled - i;
    }
}

/// A line longer than a scan's cap, delivered in parts: each part is a
/// CRI line of its own with the line's time and stream, tagged `P` but
/// the last, which keeps the line's tag. A part's raw bytes are the
/// file's, so the parts' raw bytes make up the line.
struct Long {
    /// `<time> <stream> <tag> `.
    prefix: Vec<u8>,
    tag: u8,
    /// Where the line starts: a scan that stops in it resumes there.
    start: u64,
}

impl Long {
    /// The long line starting with `head` at `start`; `None` when it is
    /// not a CRI line with a one-letter tag.
    fn at(head: &[u8], start: u64) -> Option<Long> {
        let l = cri::parse_line(head).ok()?;
        let p = l.content.as_ptr() as usize - head.as_ptr() as usize;
        if p < 2 || head[p - 1] != b' ' || !matches!(head[p - 2], b'P' | b'F') {
            return None;
        }
        Some(Long {
            prefix: head[..p].to_vec(),
            tag: head[p - 2],
            start,
        })
    }

    /// The part holding `content`, tagged `tag`, built in `out`.
    fn part<'o>(&self, out: &'o mut Vec<u8>, tag: u8, content: &[u8]) -> &'o [u8] {
        out.clear();
        out.extend_from_slice(&self.prefix);
        let t = self.prefix.len() - 2;
        out[t] = tag;
        out.extend_from_slice(content);
        out
    }
}

/// Reads the lines before `end` backwards, nearest first, until `on_line`
/// returns false or `budget` bytes were read.
pub(super) fn scan_back(
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

/// The fingerprint of an open plain file's first line.
pub(super) fn head_fingerprint(f: &std::fs::File) -> Option<u64> {
    use std::os::unix::fs::FileExt as _;
    let mut head = [0u8; fileset::FINGERPRINT_BYTES];
    let n = f.read_at(&mut head, 0).ok()?;
    fileset::fingerprint_of(&head[..n])
}

/// The timestamp of the first timestamped line of a file.
pub(super) fn first_time(content: &Content) -> Option<Nanos> {
    time_from(content, 0, u64::MAX).map(|(_, t)| t)
}

/// The first line at or after line start `from` (and before `hi`) that has
/// a valid timestamp: its start and time.
pub(super) fn time_from(content: &Content, from: u64, hi: u64) -> Option<(u64, Nanos)> {
    let mut buf = vec![0u8; 16 << 10];
    let mut found = None;
    let mut looked = 0u64;
    let _ = scan_lines(
        content,
        from,
        &mut buf,
        false,
        &mut |line, _, start, end| {
            if start >= hi {
                return false;
            }
            if let Some(t) = cri::line_timestamp(line) {
                found = Some((start, t));
                return false;
            }
            looked += end - start;
            looked < (1 << 20)
        },
    );
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
