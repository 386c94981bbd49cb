//! Following an attempt: the loop around [`state::FollowState`].
//!
//! The loop waits, gathers what the state machine needs (the current
//! file's size through its descriptor, whether the runtime still writes a
//! held file, the active file opened again by name), does the step it
//! returns (a read, a relisting) and waits again. It holds no descriptor
//! but the current file's between notifications.

mod state;
#[cfg(test)]
mod tests;

pub(crate) use state::{Current, FollowState, Reopened, Step};

use super::*;
use crate::fs::safe_open::Opened;

/// A follower between steps: what [`Session::follow_step`] continues.
pub struct Follower {
    asm: Assembler,
    sel: Selector,
    st: FollowState,
    /// The last step spent its budget with the file going on.
    more: bool,
}

impl Follower {
    /// How long to wait for a notification before stepping anyway: until
    /// a multi-line event is due or a held file is given up on (see
    /// [`FollowState::timeout`]). `None`: until notified.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        self.st.timeout(self.asm.deadline(), cri::now_nanos())
    }

    /// Whether to step again at once (with [`Wake::Modified`]): the last
    /// step read its budget and the file goes on.
    pub fn has_more(&self) -> bool {
        self.more
    }
}

/// What one follow step reads at most (and hands to the sink) before it
/// pauses at a line start, so that followers share the threads fairly
/// and a step's output stays small.
pub(crate) const STEP_BYTES: u64 = 32 << 10;

impl Session<'_> {
    /// The follower at `end`, once the history was read; `None` when the
    /// output is already done.
    pub(super) fn start_following(
        &mut self,
        asm: Assembler,
        sel: Selector,
        end: Mark,
    ) -> Option<Follower> {
        let mut f = Follower {
            asm,
            sel,
            st: FollowState {
                end,
                held: self.held,
            },
            more: false,
        };
        self.expire(&mut f.asm, &f.sel);
        self.rest();
        (!self.out.done).then_some(f)
    }

    /// One step of the follower, for what woke it: reads what was appended
    /// (at most [`STEP_BYTES`] of it), or follows the files to where they
    /// went. False once the follow is over (the client left, the attempt
    /// ended, the output is done).
    pub fn follow_step(&mut self, f: &mut Follower, wake: Wake) -> bool {
        let alive = !self.out.done && self.step(f, wake);
        if alive {
            // A multi-line event with no line for `flushAfter` is complete.
            self.expire(&mut f.asm, &f.sel);
        }
        self.rest();
        alive && !self.out.done
    }

    /// Between steps a follower holds no buffer.
    fn rest(&mut self) {
        self.out.release();
        self.files.buf = Vec::new();
    }

    fn step(&mut self, f: &mut Follower, wake: Wake) -> bool {
        if std::mem::take(&mut f.more) && wake != Wake::Stop {
            // The last step spent its budget: read on through the files
            // listed, to the last.
            let last = (self.files.list.len() - 1) as u32;
            let passed = self.read_on(f, last, self.last_file());
            return self.settle(f, passed);
        }
        let cur = self.current(&f.st, wake);
        let mut step = f.st.woke(wake, cur);
        let mut reopened = None;
        if step == Step::Reopen {
            reopened = self.reopen_active(f.st.end.file as usize);
            step = f.st.reopened(reopened.as_ref().map(|(r, _)| *r));
        }
        let cur = f.st.end.file as usize;
        let passed = match step {
            Step::Stop | Step::Reopen => return false,
            Step::Read { size } => {
                self.files.list[cur].size = size;
                self.read_on(f, cur as u32, LastFile::Growing)
            }
            Step::ReadReopened => {
                let (_, o) = reopened.expect("a reopened file");
                let file = &mut self.files.list[cur];
                file.content = Content::Plain(o.file);
                file.size = o.size;
                self.read_on(f, cur as u32, LastFile::Growing)
            }
            Step::StartOver => {
                let (_, o) = reopened.expect("a reopened file");
                self.start_over(cur, o, &mut f.asm, &f.sel)
            }
            Step::Relist => {
                let passed = self.reconcile(&mut f.asm, &f.sel, f.st.end);
                f.st.held = self.held;
                passed
            }
        };
        self.settle(f, passed)
    }

    /// The step's pass from where the follower is to the end of file
    /// `last`, within the step's budget.
    fn read_on(&mut self, f: &mut Follower, last: u32, last_file: LastFile) -> Option<Passed> {
        let budget = Some(self.step_bytes);
        self.pass_within(f.st.end, last, last_file, &mut f.asm, &f.sel, budget)
    }

    /// Where a step's pass ended: the follower's new position; once the
    /// attempt is finished and read to its end, the last events and the
    /// end of the follow. False when the follow is over.
    fn settle(&mut self, f: &mut Follower, passed: Option<Passed>) -> bool {
        let Some(p) = passed else { return false };
        f.st.end = p.end;
        f.more = p.paused;
        if p.paused {
            // Files after this one may hold what comes next: all stay open.
            return true;
        }
        if self.closed {
            self.finish(&mut f.asm, &f.sel, p.end);
            return false;
        }
        // Keep only the current file open: a change notification (which
        // a deletion always causes) lands in `reconcile` first, and that
        // replaces or drops it.
        self.files.close_all_but(p.end.file, f.st.held.is_some());
        true
    }

    /// File `cur` was truncated in place: what was open can no longer
    /// complete, and its content, opened again as `o`, is read as a new
    /// file from its start.
    fn start_over(
        &mut self,
        cur: usize,
        o: Opened,
        asm: &mut Assembler,
        sel: &Selector,
    ) -> Option<Passed> {
        let f = &self.files.list[cur];
        telemetry::truncated_under_reader(&f.log.name);
        asm.reset();
        let idx = self.files.push(SessFile {
            log: f.log.clone(),
            key: o.key,
            fingerprint: None,
            content: Content::Plain(o.file),
            size: o.size,
        });
        let start = Mark {
            file: idx,
            offset: 0,
        };
        let budget = Some(self.step_bytes);
        self.pass_within(start, idx, LastFile::Growing, asm, sel, budget)
    }

    /// What is known of the current file on waking (see [`Current`]).
    fn current(&self, st: &FollowState, wake: Wake) -> Current {
        let f = &self.files.list[st.end.file as usize];
        let Content::Plain(file) = &f.content else {
            return Current {
                active: f.log.rotated.is_none(),
                ..Current::default()
            };
        };
        Current {
            active: f.log.rotated.is_none(),
            open_size: Some(f.content.size()),
            written_until: if st.probes_writer(wake) {
                fileset::written_until(&f.log, file)
            } else {
                None
            },
        }
    }

    /// Opens the active file of the attempt by name and compares it with
    /// file `cur`.
    fn reopen_active(&self, cur: usize) -> Option<(Reopened, Opened)> {
        let active = format!("{}.log", self.target.ctx.attempt);
        let [pod_dir, container] = self.target.dir.components();
        let o = self
            .target
            .root
            .open_file(&[pod_dir, container, active.as_str()])
            .ok()?;
        let same = o.key == self.files.list[cur].key
            && match self.files.fps[cur] {
                Some(fp) => head_fingerprint(&o.file) == Some(fp),
                None => true,
            };
        Some((Reopened { same, size: o.size }, o))
    }

    /// After the directory changed: finishes the current file wherever it
    /// went, then reads the files that are new since. `None` ends the follow.
    fn reconcile(&mut self, asm: &mut Assembler, sel: &Selector, end: Mark) -> Option<Passed> {
        let cur = end.file as usize;
        let cur_key = self.files.list[cur].key;
        let cur_fp = self.files.fps[cur];
        // Nothing was read from the current file yet: not finding it again
        // loses nothing.
        let consumed_nothing = end.offset == 0 && cur_fp.is_none();
        let (v, pos) = self.relist(cur, consumed_nothing)?;
        let mut opened = v.opened;
        self.closed = v.closed;
        self.held = v.held;
        // Where reading goes on: in the current file, or (it was truncated,
        // or lost) at the first file after it.
        let mut go_on_in_current = false;
        let rest = match pos {
            Some(p) => {
                let mut after: Vec<OpenLog> = opened.drain(p + 1..).collect();
                let o = self.readable(opened.pop().expect("position p exists"))?;
                let f = &mut self.files.list[cur];
                if o.size < end.offset && !o.file.compressed {
                    telemetry::truncated_under_reader(&f.log.name);
                    asm.reset();
                    after.insert(0, o);
                } else {
                    f.content = o.content;
                    f.size = o.size;
                    f.log = o.file;
                    // It may be another file now (compressed into one).
                    f.key = o.key;
                    go_on_in_current = true;
                }
                after
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
                    opened.drain(t..).collect()
                } else {
                    if !consumed_nothing {
                        telemetry::follow_lost_file(&self.files.list[cur].log.name);
                    }
                    let fps = &self.files.fps;
                    opened
                        .into_iter()
                        .filter(|o| o.fingerprint.is_none() || !fps.contains(&o.fingerprint))
                        .collect()
                }
            }
        };
        let first_new = self.files.list.len() as u32;
        let rest: Vec<OpenLog> = rest.into_iter().filter_map(|o| self.readable(o)).collect();
        for o in rest {
            self.files.push(sess_file(o));
        }
        let last = (self.files.list.len() - 1) as u32;
        let from = if go_on_in_current {
            end
        } else if first_new <= last {
            Mark {
                file: first_new,
                offset: 0,
            }
        } else {
            return Some(Passed { end, paused: false });
        };
        // The current file (with files after it, closed for good: a
        // trailing line without '\n' will never be completed) and the new
        // ones, within the step's budget.
        let budget = Some(self.step_bytes);
        self.pass_within(from, last, self.last_file(), asm, sel, budget)
    }

    /// `o`, ready to be read: a compressed file that the listing only
    /// recognised ([`Content::Unread`]) is opened and decompressed now.
    fn readable(&self, o: OpenLog) -> Option<OpenLog> {
        if !matches!(o.content, Content::Unread) {
            return Some(o);
        }
        let dir = self.target.dir.components();
        match fileset::open_log(&self.target.root, &dir, &o.file) {
            Ok(full) => Some(full),
            Err(e) => {
                telemetry::file_skipped(&o.file.name, &e);
                None
            }
        }
    }

    /// Lists the attempt again, and finds file `cur` in it (by inode and
    /// first line, then by first line alone: it may have been compressed
    /// into a new file). Looks again while the directory changes under the
    /// listing, or while the file is missing (it may have been renamed
    /// meanwhile). `None`: the container directory is gone.
    fn relist(&self, cur: usize, consumed_nothing: bool) -> Option<(View, Option<usize>)> {
        let cur_key = self.files.list[cur].key;
        let cur_fp = self.files.fps[cur];
        let locate = |opened: &[OpenLog]| {
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
        let mut round = 1;
        loop {
            let v = open_attempt(
                &self.target,
                &|o: &OpenLog| o.key == cur_key && (cur_fp.is_none() || o.fingerprint == cur_fp),
                &|key, name| self.files.known(key, name),
            )
            .ok()?;
            let pos = locate(&v.opened);
            if (!v.raced && (pos.is_some() || consumed_nothing)) || round >= RECONCILE_ROUNDS {
                return Some((v, pos));
            }
            round += 1;
        }
    }
}
