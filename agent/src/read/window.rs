//! History windows: where a historic read starts (a cursor, `sinceTime`)
//! and, with `tailLines`, the window at the end of the attempt that holds
//! the last N events.

use super::*;

impl Session<'_> {
    /// Where the historic part starts, by cursor and `sinceTime`.
    pub(super) fn start_point(&mut self) -> Origin {
        let mut start = self.files.set_start();
        let mut sync = [true; 2];
        let mut after = None;
        let mut framed = Start::Fresh;
        if let Some(c) = &self.cursor {
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
        Origin {
            at: start,
            sync,
            after,
            framed,
        }
    }

    /// With `tailLines`: where to start reading (a window at the end of the
    /// set, never before `floor`), its sync state, and the completion
    /// position after which to deliver.
    pub(super) fn tail_window(&mut self, floor: Origin) -> Origin {
        let Some(n) = self.spec.tail else {
            return floor;
        };
        let after = floor.after;
        let last = (self.files.list.len() - 1) as u32;
        if n == 0 {
            // Nothing historic: deliver only what comes after the end.
            let end = self.files.set_end();
            let after = Some(End {
                at: end,
                sub: u32::MAX,
            })
            .max(after);
            if end <= floor.at {
                return Origin { after, ..floor };
            }
            return Origin {
                at: end,
                sync: self.files.sync_at(end),
                after,
                framed: Start::Unknown,
            };
        }
        let cap = n.min(1 << 24) as usize;
        let mut step: u64 = n.saturating_mul(512).max(64 << 10);
        loop {
            let w = self.files.back_off(step);
            let (w, sync, framed) = if w <= floor.at {
                (floor.at, floor.sync, floor.framed)
            } else {
                (w, self.files.sync_at(w), Start::Unknown)
            };
            let whole = w <= floor.at;
            let window = Origin {
                at: w,
                sync,
                after,
                framed,
            };
            let (ring, dropped) = self.last_events(window, last, cap);
            if ring.len() >= cap {
                let t = ring[0];
                if whole || dropped.is_none_or(|d| d < t.at) {
                    // Deliver from t on: everything after the one before it.
                    return Origin {
                        at: w,
                        sync,
                        after: Some(before(t)).max(after),
                        framed,
                    };
                }
            } else if whole {
                return Origin {
                    at: w,
                    sync,
                    after,
                    framed,
                };
            }
            step = step.saturating_mul(4);
        }
    }

    /// The completion positions of the last `cap` events that pass the
    /// filters, reading from `from` to the end of file `last`; and the end
    /// of the last line dropped because its chain began before `from`.
    fn last_events(
        &mut self,
        from: Origin,
        last: u32,
        cap: usize,
    ) -> (std::collections::VecDeque<End>, Option<Mark>) {
        let mut asm = Assembler::new(self.spec.max_event_bytes, RawLines::Drop)
            .with_framing(self.spec.framing.clone(), from.framed);
        asm.set_synced(from.sync);
        asm.set_last_time(self.files.time_before(from.at));
        let sel = self.selector(from.after);
        let mut ring = std::collections::VecDeque::new();
        let mut on = |ev: &Event<'_>, _: &[Option<u64>]| {
            if sel.accepts(ev) {
                if ring.len() == cap {
                    ring.pop_front();
                }
                ring.push_back(ev.end);
            }
        };
        let end = self.files.drive(
            from.at,
            last,
            self.last_file(),
            None,
            &mut asm,
            &mut on,
            &mut |_, _| Flow::Go,
        );
        if self.closed {
            if let Some(Passed { end: e, .. }) = end {
                asm.finish(e, &mut |ev: &Event<'_>| on(ev, &[]));
            }
        } else if asm.deadline().is_some() {
            // The multi-line events the read will flush as paused.
            let now = cri::now_nanos().saturating_sub(crate::event::framing::GRACE);
            asm.expire(now, &mut |ev: &Event<'_>| on(ev, &[]));
        }
        (ring, asm.dropped_end())
    }
}

/// Where a historic read starts.
#[derive(Clone, Copy, Debug)]
pub(super) struct Origin {
    pub(super) at: Mark,
    /// Per stream: whether no chain is open at `at` (see
    /// [`Assembler::set_synced`]).
    pub(super) sync: [bool; 2],
    /// Deliver only events completed after this.
    pub(super) after: Option<End>,
    /// What a delimiter policy's framer knows at `at`.
    pub(super) framed: Start,
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
