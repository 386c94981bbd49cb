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
        rotated: &str,
        container_id: &str,
    ) -> Result<Result<(), ReopenError>, LifecycleError> {
        for attempt in 1..=REOPEN_TRIES {
            let made = self.own_active(dir, active, rotated)?;
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
    /// `rotated`'s mode and owner, if the name is free; the plain file there
    /// otherwise (the runtime's own, or podlogd's from before a crash).
    fn own_active(
        &mut self,
        dir: &[&str],
        active: &str,
        rotated: &str,
    ) -> Result<FileKey, LifecycleError> {
        let name = at(dir, active);
        match self.root.entry(&name) {
            Ok(e) if e.regular && e.links == 1 => return Ok(e.key),
            Err(e) if e.is_not_found() => {}
            found => return Err(self.planted(dir, active, &found)),
        }
        let like = self
            .root
            .entry(&at(dir, rotated))
            .map_err(fs("rotate: look at the rotated file"))?;
        let f = match self.root.create_new(&name, like.mode) {
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
        f.set_permissions(std::fs::Permissions::from_mode(like.mode))
            .map_err(io("rotate: set the new log file's mode"))?;
        if let Err(e) = std::os::unix::fs::fchown(&f, Some(like.uid), Some(like.gid)) {
            // Not root (tests): the file stays podlogd's.
            tracing::debug!(path = %path.display(), error = %e, "cannot give the new log file the rotated file's owner");
        }
        let meta = f.metadata().map_err(io("rotate: stat the new log file"))?;
        self.sync_dir(dir, "rotate: sync the directory")?;
        use std::os::unix::fs::MetadataExt as _;
        Ok(FileKey {
            dev: meta.dev(),
            ino: meta.ino(),
        })
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
        let reason = format!(
            "{what} was planted as {} after its rotation; the runtime is not asked to reopen onto it and keeps writing the rotated file",
            path.display()
        );
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
