//! The files a read session knows, by session-local index: positions in
//! the set, sync points, time search, and the drive that feeds lines to an
//! assembler.

use super::*;

/// One file of the session, by session-local index.
pub(super) struct SessFile {
    pub(super) log: LogFile,
    pub(super) key: FileKey,
    pub(super) fingerprint: Option<u64>,
    pub(super) content: Content,
    pub(super) size: u64,
}

/// The files a session knows, by session-local index, in read order.
pub(super) struct Files {
    pub(super) list: Vec<SessFile>,
    pub(super) fps: Vec<Option<u64>>,
    pub(super) buf: Vec<u8>,
    /// A longer line is read cut to this (the event cap and a prefix), so
    /// the buffer stays below it ([`Scan::line_cap`]).
    pub(super) line_cap: usize,
}

impl Files {
    pub(super) fn push(&mut self, f: SessFile) -> u32 {
        self.fps.push(f.fingerprint);
        self.list.push(f);
        (self.list.len() - 1) as u32
    }

    pub(super) fn set_start(&self) -> Mark {
        Mark { file: 0, offset: 0 }
    }

    pub(super) fn set_end(&self) -> Mark {
        let last = self.list.len() - 1;
        Mark {
            file: last as u32,
            offset: self.list[last].size,
        }
    }

    pub(super) fn index_of(&self, fp: u64) -> Option<u32> {
        self.fps
            .iter()
            .position(|f| *f == Some(fp))
            .map(|i| i as u32)
    }

    /// Drops every descriptor: nothing stays open between reads, so a
    /// deleted file's space is freed at once.
    pub(super) fn close_all(&mut self) {
        for f in &mut self.list {
            f.content = Content::Mem(Arc::new(Vec::new()));
        }
    }

    /// Drops every descriptor but that of file `keep` when it is the active
    /// file, or a rotated one still written (`held`; other rotated files are
    /// never kept open).
    pub(super) fn close_all_but(&mut self, keep: u32, held: bool) {
        for (i, f) in self.list.iter_mut().enumerate() {
            if i as u32 != keep || (f.log.rotated.is_some() && !held) {
                f.content = Content::Mem(Arc::new(Vec::new()));
            }
        }
    }

    /// What the session knows of the compressed file `name` with identity
    /// `key`, if it opened it (see [`fileset::open_log_known`]).
    pub(super) fn known(&self, key: FileKey, name: &str) -> Option<Known> {
        self.list
            .iter()
            .zip(&self.fps)
            .find(|(f, _)| f.log.compressed && f.key == key && f.log.name == name)
            .map(|(f, fp)| Known {
                size: f.size,
                fingerprint: *fp,
            })
    }

    /// The line start about `bytes` before the end of the set.
    pub(super) fn back_off(&self, bytes: u64) -> Mark {
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
    pub(super) fn next_line_start(&self, idx: usize, off: u64) -> u64 {
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
    pub(super) fn sync_at(&self, at: Mark) -> [bool; 2] {
        // A stream's last line decides whether its chain is open after it.
        let mut seen = [false; 2];
        let mut chains = Chains::default();
        self.walk_back(at, &mut |line| {
            if let Some((stream, open)) = Chains::after(line) {
                if !std::mem::replace(&mut seen[stream.index()], true) && open {
                    chains.open_at(stream, ());
                }
            }
            !(seen[0] && seen[1])
        });
        chains.open().map(|open| !open)
    }

    /// The time of the last valid line before `at` (within the sync scan
    /// budget), the time a malformed line at `at` inherits.
    pub(super) fn time_before(&self, at: Mark) -> Option<Nanos> {
        let mut found = None;
        self.walk_back(at, &mut |line| {
            found = cri::parse_line(line).ok().map(|l| l.time);
            found.is_none()
        });
        found
    }

    /// Hands the lines before `at` to `on_line`, newest first, across
    /// files, until it returns false or `SYNC_SCAN_BYTES` are scanned.
    pub(super) fn walk_back(&self, at: Mark, on_line: &mut dyn FnMut(&[u8]) -> bool) {
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
    pub(super) fn find_time(&self, t: Nanos) -> Mark {
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
        // A streamed file is searched by one pass: each step back of a
        // bisection would decompress it again from its start.
        if content.is_streamed() {
            hi = lo;
        }
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
        let _ = scan_lines(content, lo, &mut buf, false, &mut |line, _, start, _| {
            match cri::line_timestamp(line) {
                Some(ts) if ts >= t => {
                    found = Some(start);
                    false
                }
                _ => true,
            }
        });
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
    /// calling `on_event` for each event; `on_line` may stop the drive or
    /// pause it before a line. Files before `last` are closed, so a
    /// trailing line without `\n` is delivered; in `last` it waits for its
    /// `\n` unless that file is [`LastFile::Complete`]. Returns the end mark
    /// reached (a paused drive: the start of the line it paused before),
    /// `None` when stopped early.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn drive(
        &mut self,
        start: Mark,
        last: u32,
        last_file: LastFile,
        budget: Option<u64>,
        asm: &mut Assembler,
        on_event: &mut dyn FnMut(&Event<'_>, &[Option<u64>]),
        on_line: &mut dyn FnMut(&[u8], &Assembler) -> Flow,
    ) -> Option<Passed> {
        let mut at = start;
        let mut left = budget;
        for idx in start.file as usize..=last as usize {
            let off = if idx == start.file as usize {
                start.offset
            } else {
                0
            };
            let closed = idx != last as usize || last_file == LastFile::Complete;
            let fps = &mut self.fps;
            let mut flow = Flow::Go;
            let how = Scan {
                closed,
                budget: left,
                line_cap: self.line_cap,
            };
            let r = scan_lines_within(
                &self.list[idx].content,
                off,
                &mut self.buf,
                how,
                &mut |line, raw, lstart, lend| {
                    if lstart == 0 && fps[idx].is_none() {
                        fps[idx] = fileset::fingerprint_of(raw);
                    }
                    flow = on_line(line, asm);
                    if flow != Flow::Go {
                        // The scan ends at the start of this line.
                        return false;
                    }
                    let pos = LinePos {
                        file: idx as u32,
                        start: lstart,
                        end: lend,
                    };
                    let fps: &[Option<u64>] = fps;
                    asm.push(line, raw, pos, &mut |ev: &Event<'_>| on_event(ev, fps));
                    true
                },
            );
            let (end, paused) = match r {
                Ok(s) => (s.end, s.paused),
                Err(e) => {
                    telemetry::read_failed(&self.list[idx].log.name, &e);
                    (self.list[idx].size, false)
                }
            };
            at = Mark {
                file: idx as u32,
                offset: end,
            };
            if let Some(l) = &mut left {
                *l = l.saturating_sub(end - off);
                if paused || (*l == 0 && idx < last as usize) {
                    flow = Flow::Pause;
                }
            }
            match flow {
                Flow::Go => {}
                Flow::Stop => return None,
                Flow::Pause => {
                    return Some(Passed {
                        end: at,
                        paused: true,
                    })
                }
            }
        }
        Some(Passed {
            end: at,
            paused: false,
        })
    }
}

pub(super) fn sess_file(o: OpenLog) -> SessFile {
    SessFile {
        log: o.file,
        key: o.key,
        fingerprint: o.fingerprint,
        content: o.content,
        size: o.size,
    }
}
