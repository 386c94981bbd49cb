//! Rotation that cannot be redirected.
//!
//! `ReopenContainerLog` makes the runtime open `N.log` by name, following
//! whatever is there: a symlink planted under the name between the rename
//! and the reopen would have the runtime append the container's output to
//! any file of the node. So podlogd makes the new `N.log` itself before the
//! reopen (`O_CREAT|O_EXCL|O_NOFOLLOW`, beneath the root, with the rotated
//! file's mode and owner), and checks after the reopen that the name is
//! still that file.
//!
//! - Something else under the name before the reopen (a symlink, a FIFO, a
//!   device, a directory, a hard-linked file): the runtime is not asked;
//!   it goes on writing the rotated file. The rotation stays pending,
//!   the container's rotation is paused with the reason, and recovery
//!   tries again each round: once the name is free (or a plain file), the
//!   rotation finishes and the pause ends.
//! - The name replaced while the runtime reopened it: the runtime may have
//!   opened what replaced it. podlogd takes the name back (the entry is
//!   removed, never followed), makes its own file again and asks again, so
//!   the runtime writes where it should; replaced three times in a row, the
//!   rotation stays pending and paused as above, the name free for
//!   recovery's next try (until then, at most one lifecycle round, the
//!   runtime may write where the last replacement pointed).
//! - Something under the live name of a running container found by a
//!   lifecycle pass (a symlink renamed over it, or there before the
//!   runtime's first open, which then writes where it points): reported,
//!   removed and healed, once per pause (see [`Executor::take_back`]).
//! - Something swapped in under the name between its check and the
//!   rename (the runtime's file lost its name to it): the new file takes
//!   podlogd's mode and owner, not what was swapped in, and the runtime is
//!   reopened onto it.
//!
//! Each is a security event (`podlog_security_events_total{kind}`, logged
//! at `error`), reported once per pause.

use std::os::unix::fs::PermissionsExt as _;

use crate::fs::safe_open::{Entry, FileKey};
use crate::telemetry;

use super::{at, fs, Executor, LifecycleError, ReopenError};

/// Reopens tried in one go when the name is replaced each time.
const REOPEN_TRIES: u32 = 3;

/// What an entry found under the active name is, for messages.
fn described(found: &Result<Entry, crate::fs::safe_open::SafeOpenError>) -> String {
    match found {
        Ok(e) if e.regular && e.links > 1 => format!("a file with {} hard links", e.links),
        Ok(e) => format!("a {}", e.kind),
        Err(e) if e.is_not_found() => "nothing".into(),
        Err(e) => format!("something that cannot be looked at ({e})"),
    }
}

/// A symlink's target for a report: quoted with its control characters
/// escaped (it is anyone's bytes, and goes into the log), at most 256
/// characters.
fn shown_target(to: &std::ffi::OsStr) -> String {
    const MAX: usize = 256;
    let text = to.to_string_lossy();
    let cut: String = text.chars().take(MAX).collect();
    let more = if text.chars().nth(MAX).is_some() {
        "…"
    } else {
        ""
    };
    format!("{cut:?}{more}")
}

impl Executor {
    /// Makes sure the runtime reopens onto a plain file beneath the root:
    /// makes `active` (or takes the plain file there), asks the runtime to
    /// reopen container `container_id`'s log, and checks that `active` is
    /// still that file after; taken back once if it is not.
    ///
    /// # Errors
    ///
    /// The outer error: [`LifecycleError::Redirected`] (something planted
    /// under the name; nothing reopened onto it), or a failed file step.
    /// The inner one: the runtime refused or could not be asked.
    pub(super) fn reopen_guarded(
        &mut self,
        dir: &[&str],
        active: &str,
        rotated: Option<&str>,
        container_id: &str,
    ) -> Result<Result<(), ReopenError>, LifecycleError> {
        for attempt in 1..=REOPEN_TRIES {
            let (made, new) = self.own_active(dir, active, rotated)?;
            if new {
                // Durable before the runtime opens it (a rotation's
                // first file, made right after the rename, is synced after
                // the reopen, to keep that window short).
                self.sync_dir(dir, "rotate: sync the directory")?;
            }
            if let Err(e) = self.reopener.reopen(container_id) {
                return Ok(Err(e));
            }
            let found = self.root.entry(&at(dir, active));
            if matches!(&found, Ok(e) if e.key == made) {
                self.resume(dir);
                return Ok(Ok(()));
            }
            let what = described(&found);
            let path = self.path(dir, active);
            let reason = format!(
                "{} was replaced by {what} while the runtime reopened it",
                path.display()
            );
            self.alarm(dir, "log_file_replaced", &reason);
            // Take the name back, so that the runtime's next reopen (the
            // next try, or recovery's) is onto podlogd's file again.
            match self.root.unlink_entry(&at(dir, active)) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(fs("rotate: take the log file's name back")(e)),
            }
            if attempt == REOPEN_TRIES {
                return Err(LifecycleError::Redirected { path, found: what });
            }
        }
        unreachable!("the last try returns")
    }

    /// The file under `active` the runtime may reopen onto: made now, with
    /// `rotated`'s mode and owner (without one, `0640` and podlogd's), if
    /// the name is free; the plain file there otherwise (the runtime's own,
    /// or podlogd's from before a crash). True when it was made now (its
    /// name not yet synced).
    pub(super) fn own_active(
        &mut self,
        dir: &[&str],
        active: &str,
        rotated: Option<&str>,
    ) -> Result<(FileKey, bool), LifecycleError> {
        let name = at(dir, active);
        match self.root.entry(&name) {
            Ok(e) if e.regular && e.links == 1 => return Ok((e.key, false)),
            Err(e) if e.is_not_found() => {}
            found => return Err(self.planted(dir, active, &found)),
        }
        let like = match rotated {
            Some(r) => self.like(dir, active, r)?,
            None => None,
        };
        let mode = like.map_or(super::DEFAULT_MODE, |l| l.mode);
        let f = match self.root.create_new(&name, mode) {
            Ok(f) => f,
            Err(e) if e.is_exists() => {
                let found = self.root.entry(&name);
                return Err(self.planted(dir, active, &found));
            }
            Err(e) => return Err(fs("rotate: create the new log file")(e)),
        };
        let path = self.path(dir, active);
        let io = |step| {
            let path = path.clone();
            move |source| LifecycleError::Io { step, path, source }
        };
        // The umask does not decide: the runtime's file mode does.
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io("rotate: set the new log file's mode"))?;
        if let Some(l) = like {
            if let Err(e) = std::os::unix::fs::fchown(&f, Some(l.uid), Some(l.gid)) {
                // Not root (tests): the file stays podlogd's.
                tracing::debug!(path = %path.display(), error = %e, "cannot give the new log file the rotated file's owner");
            }
        }
        let meta = f.metadata().map_err(io("rotate: stat the new log file"))?;
        use std::os::unix::fs::MetadataExt as _;
        Ok((
            FileKey {
                dev: meta.dev(),
                ino: meta.ino(),
            },
            true,
        ))
    }

    /// The rotated file `rotated`, whose mode and owner the new `active`
    /// takes, if it is the runtime's: a plain file with one link. Anything
    /// else was swapped in under `active` between its check and its rename
    /// (the runtime's file lost its name to it): a security event, and the
    /// new file takes podlogd's mode and owner, never an attacker's.
    fn like(
        &mut self,
        dir: &[&str],
        active: &str,
        rotated: &str,
    ) -> Result<Option<Entry>, LifecycleError> {
        let found = self.root.entry(&at(dir, rotated));
        match found {
            Ok(e) if e.regular && e.links == 1 => Ok(Some(e)),
            Err(e) if !e.is_not_found() => Err(fs("rotate: look at the rotated file")(e)),
            found => {
                let reason = format!(
                    "{} was renamed over {} just before its rotation (now {}); the new log file is podlogd's",
                    described(&found),
                    self.path(dir, active).display(),
                    self.path(dir, rotated).display(),
                );
                self.alarm(dir, "planted_log_file", &reason);
                Ok(None)
            }
        }
    }

    /// Checks the active file `active` of the container in `dir`, before
    /// a rotation and on every lifecycle pass of a running container:
    /// something else than a plain file under its name is planted
    /// (reported once, the rotation paused; nothing is renamed). A symlink
    /// renamed over the live file grows nothing, so no rotation would
    /// ever look.
    ///
    /// # Errors
    ///
    /// [`LifecycleError::Redirected`]: something is planted there.
    pub fn check_active(&mut self, dir: &[&str], active: &str) -> Result<(), LifecycleError> {
        match self.root.entry(&at(dir, active)) {
            Ok(e) if !(e.regular && e.links == 1) => Err(self.planted(dir, active, &Ok(e))),
            _ => Ok(()),
        }
    }

    /// A container whose rotation is paused for something planted under
    /// its active name, with no rotation pending: once the name is free
    /// again, podlogd makes the file and has the runtime reopen onto it
    /// (whatever the runtime wrote meanwhile went to the file it had open,
    /// which may have lost its name); a plain file there ends the pause.
    ///
    /// # Errors
    ///
    /// Still planted ([`LifecycleError::Redirected`]), the runtime refused
    /// or was away (the file podlogd made is removed again), a failed step.
    pub fn heal(
        &mut self,
        dir: [&str; 2],
        attempt: u32,
        container_id: &str,
    ) -> Result<(), LifecycleError> {
        if self.paused.reason(dir[0], dir[1]).is_none()
            || self
                .journal
                .pending()
                .iter()
                .any(|(_, i, _)| i.dir() == dir)
        {
            return Ok(());
        }
        let active = format!("{attempt}.log");
        match self.root.entry(&at(&dir, &active)) {
            Ok(e) if e.regular && e.links == 1 => {
                self.resume(&dir);
                return Ok(());
            }
            Err(e) if e.is_not_found() => {}
            found => return Err(self.planted(&dir, &active, &found)),
        }
        let path = self.path(&dir, &active);
        match self.reopen_guarded(&dir, &active, None, container_id)? {
            Ok(()) => Ok(()),
            Err(source @ ReopenError::Refused { .. }) => {
                self.remove_unused_active(&dir, &active)?;
                Err(LifecycleError::ReopenRefused {
                    path,
                    undo: super::Undo::RolledBack,
                    source,
                })
            }
            Err(source @ ReopenError::Unavailable { .. }) => {
                self.remove_unused_active(&dir, &active)?;
                Err(LifecycleError::ReopenUnavailable { path, source })
            }
        }
    }

    /// Something found planted under the live name of running container
    /// `container_id` by a pass, not by a rotation: it may have been there
    /// before the runtime opened the name (at the container's start),
    /// which then writes where it points. The entry is removed (never
    /// followed; a directory stays), then healed as in [`Executor::heal`]:
    /// podlogd makes the file and the runtime reopens onto it, so such a
    /// redirect lasts until this pass at most.
    ///
    /// # Errors
    ///
    /// The entry cannot be removed (a directory), or as [`Executor::heal`].
    pub fn take_back(
        &mut self,
        dir: [&str; 2],
        attempt: u32,
        container_id: &str,
    ) -> Result<(), LifecycleError> {
        let active = format!("{attempt}.log");
        match self.root.unlink_entry(&at(&dir, &active)) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                return Err(fs(
                    "heal: remove what was planted under the log file's name",
                )(e))
            }
        }
        tracing::warn!(pod = dir[0], container = dir[1], file = %active, "removed what was planted under the log file's name; the runtime is reopened onto podlogd's file");
        self.heal(dir, attempt, container_id)
    }

    /// Removes the empty plain file under `active` that podlogd made for a
    /// reopen that did not happen (the runtime refused or was away: it
    /// never opened it), so that the rotated file, which the runtime still
    /// writes, is the newest again. Anything else there is left alone.
    pub(super) fn remove_unused_active(
        &self,
        dir: &[&str],
        active: &str,
    ) -> Result<(), LifecycleError> {
        match self.root.entry(&at(dir, active)) {
            Ok(e) if e.regular && e.links == 1 && e.size == 0 => {}
            _ => return Ok(()),
        }
        match self.root.unlink(&at(dir, active)) {
            Ok(()) => self.sync_dir(dir, "rotate: sync the directory"),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(fs("rotate: remove the unused new log file")(e)),
        }
    }

    /// Something planted under the active name: reported, the rotation
    /// paused.
    fn planted(
        &mut self,
        dir: &[&str],
        active: &str,
        found: &Result<Entry, crate::fs::safe_open::SafeOpenError>,
    ) -> LifecycleError {
        let what = described(found);
        let path = self.path(dir, active);
        let mut reason = format!(
            "{what} was planted as {}; the runtime is not asked to reopen onto it and keeps writing the file it has open",
            path.display()
        );
        if matches!(found, Ok(e) if e.kind == "symlink") {
            if let Ok(to) = self.root.link_target(&at(dir, active)) {
                reason.push_str(&format!("; it points to {}", shown_target(&to)));
            }
        }
        self.alarm(dir, "planted_log_file", &reason);
        LifecycleError::Redirected { path, found: what }
    }

    /// Pauses the container's rotation with `reason`; a security event of
    /// `kind` the first time.
    fn alarm(&mut self, dir: &[&str], kind: &'static str, reason: &str) {
        if self.paused.pause(dir, format!("{kind}: {reason}")) {
            telemetry::security_event(kind, reason);
        }
    }

    /// The container's rotation goes on.
    fn resume(&mut self, dir: &[&str]) {
        if self.paused.resume(dir) {
            tracing::info!(
                pod = dir[0],
                container = dir[1],
                "rotation resumes: the log file's name is podlogd's again"
            );
        }
    }
}
