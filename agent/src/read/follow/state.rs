//! What a follower decides, as a function of what it observed.
//!
//! Pure: the follower's position and the facts its loop gathered (why it
//! woke, the current file's size and identity, whether the runtime still
//! writes a rotated file) in, the next [`Step`] out. The loop in
//! [`super`] owns the descriptors, the reads and the waiting.

use std::time::Duration;

use crate::cri::Nanos;
use crate::event::framing::GRACE;
use crate::event::Mark;
use crate::read::Wake;

/// Where a follower is, between wake-ups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FollowState {
    /// The position reached: everything before it was read.
    pub(crate) end: Mark,
    /// The view ends at a rotated file the runtime still writes; it is
    /// given up on at this CRI time at the latest (see `View::held`).
    pub(crate) held: Option<Nanos>,
}

/// What the loop knows of the current file when the follower wakes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Current {
    /// It is the active `N.log`, not a renamed one.
    pub(crate) active: bool,
    /// Its size through the descriptor still open from the last read
    /// (`None`: no plain descriptor is open).
    pub(crate) open_size: Option<u64>,
    /// While held: until when the runtime may still write it (`None`: it
    /// closed the file). Probed only when [`FollowState::probes_writer`].
    pub(crate) written_until: Option<Nanos>,
}

/// The active file, opened again by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reopened {
    /// Same inode and same first line as the current file (inodes are
    /// reused after deletion, so the inode alone proves nothing).
    pub(crate) same: bool,
    pub(crate) size: u64,
}

/// What the follower does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The client left or podlogd stops.
    Stop,
    /// Read what was appended to the current file, now `size` bytes long,
    /// through the descriptor it holds.
    Read { size: u64 },
    /// Open the active file by name and compare it ([`FollowState::reopened`]).
    Reopen,
    /// The reopened file is the current one, grown: read on through it.
    ReadReopened,
    /// The reopened file is the current one but shorter than what was
    /// read: truncated in place. Its content is a new file, read from its
    /// start; what was open can no longer complete.
    StartOver,
    /// Files were created, renamed or deleted: list the directory again,
    /// finish the current file wherever it went, read the new ones.
    Relist,
}

impl FollowState {
    /// How long to wait without a notification: until a multi-line event
    /// is due (`deadline`, plus the grace for a line in flight) or a held
    /// file is given up on. `None`: until notified.
    pub(crate) fn timeout(&self, deadline: Option<Nanos>, now: Nanos) -> Option<Duration> {
        let due = deadline.map(|d| d.saturating_add(GRACE));
        due.into_iter().chain(self.held).min().map(|due| {
            let wait = due.saturating_sub(now);
            Duration::from_nanos(wait.max(0) as u64)
        })
    }

    /// Whether the loop must ask if the runtime still writes the current
    /// file before [`FollowState::woke`]: only while the view is held, and
    /// only for writes (a timeout reads what came meanwhile, as a write).
    pub(crate) fn probes_writer(&self, wake: Wake) -> bool {
        self.held.is_some() && matches!(wake, Wake::Modified | Wake::Timeout)
    }

    /// The step for a wake-up, given what is known of the current file.
    pub(crate) fn woke(&mut self, wake: Wake, cur: Current) -> Step {
        match wake {
            Wake::Stop => return Step::Stop,
            Wake::Changed => return Step::Relist,
            Wake::Modified | Wake::Timeout => {}
        }
        if self.held.is_some() {
            if let (Some(until), Some(size)) = (cur.written_until, cur.open_size) {
                // The runtime still writes the rotated file this follower
                // is in: read what it appended, and look at the directory
                // again only once it closed the file.
                self.held = Some(until);
                return Step::Read {
                    size: size.max(self.end.offset),
                };
            }
        }
        if !cur.active {
            return Step::Relist;
        }
        match cur.open_size {
            // Fastest: the descriptor of the active file is still open and
            // nothing was renamed or deleted since, so it is the file the
            // runtime appends to.
            Some(size) if size >= self.end.offset => Step::Read { size },
            _ => Step::Reopen,
        }
    }

    /// The step once the active file was opened again (`None`: it could
    /// not be).
    pub(crate) fn reopened(&self, r: Option<Reopened>) -> Step {
        match r {
            Some(r) if r.same && r.size < self.end.offset => Step::StartOver,
            Some(r) if r.same => Step::ReadReopened,
            _ => Step::Relist,
        }
    }
}
