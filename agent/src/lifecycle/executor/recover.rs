//! Finishing or rolling back the operations a crash interrupted.
//!
//! The journal's recorded phase is a lower bound (the next step may have
//! happened too), so each rule below looks at which files exist and redoes
//! only what is not done. Every rule is idempotent: recovering twice, or
//! crashing during recovery and recovering again, ends in the same files.
//!
//! - **Rotate.** `Reopened`: complete. `Begun` without `rotated`: the
//!   rename never happened; complete (rolled back). `rotated` gone means
//!   an undo finished (complete). A plain `active` with content means the
//!   runtime reopened and wrote (complete). Otherwise ask the runtime to reopen onto
//!   a file of podlogd's, guarded (see `guard`): done → complete; refused
//!   → remove podlogd's empty new file, rename `rotated` back to `active`
//!   (or keep both if `active` holds something) and complete; unavailable,
//!   or something planted under `active` → stays pending.
//! - **Compress.** `Begun`: the temporary file may be partial; remove it,
//!   complete (the plain file is intact). `TempWritten` with the temporary
//!   file present: it is whole (fsynced before the phase was recorded);
//!   rename it to the target. Then, target and source both present: the
//!   target must decompress completely, with the codec its name ends in
//!   (`.gz` or `.zst`), to exactly the source's bytes; if so delete the
//!   source, else delete the broken target (the source is intact).
//!   `SourceDeleted`: complete. The journal records the names, not the
//!   codec: a journal written when podlog compressed with gzip only is
//!   recovered the same way.
//! - **Trim.** `Begun`: remove the possibly partial temporary file,
//!   complete (untrimmed). `TempWritten` with the temporary file present:
//!   replace the file with it (never cut again: `offset` is relative to
//!   the old content); without it: it already replaced the file.
//!   `Replaced`: complete.
//! - **Delete.** Remove the file if it is still there, complete.
//! - **Drop a span.** `Replaced`: complete. With a trim, `Begun`: remove
//!   the possibly partial temporary file, complete (nothing else was
//!   touched: rolled back). `TempWritten`: the temporary file is whole;
//!   with listings held, replace the trimmed file with it if it is still
//!   there (if that file is gone, remove it instead), then delete whichever
//!   of the files are still there (finished). Without a trim: delete
//!   whichever are still there, listings held (finished). A kill between
//!   the replace and the deletions is the only one after which the files
//!   alone read as a cut event; podlogd recovers before it serves.

use std::io;

use crate::fs::fileset::Codec;
use crate::lifecycle::journal::{EntryId, Intent, Phase, SpanTrim};

use super::{at, fs, read_full, Executor, LifecycleError, ReopenError, Undo, CHUNK};

/// Failed recoveries of one intent before it is given up.
pub(crate) const RECOVERY_TRIES: u32 = 5;

/// How an interrupted operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovered {
    /// Its effect stands: the file is rotated, compressed, trimmed or
    /// deleted.
    Finished,
    /// The files are as before it.
    RolledBack,
}

/// One interrupted operation and what recovery did with it.
#[derive(Debug)]
pub struct RecoveryReport {
    pub(crate) id: EntryId,
    pub(crate) intent: Intent,
    /// The last phase the journal had recorded.
    pub(crate) phase: Phase,
    /// `Err` leaves the intent pending (for a rotation whose runtime is
    /// unavailable, [`LifecycleError::ReopenUnavailable`]); a later
    /// [`Executor::recover`] tries again.
    pub outcome: Result<Recovered, LifecycleError>,
}

/// Compares two byte streams to their ends.
fn same_content(mut a: impl io::Read, mut b: impl io::Read) -> io::Result<bool> {
    let mut x = vec![0u8; CHUNK];
    let mut y = vec![0u8; CHUNK];
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

// === impl Executor: recovery ===

impl Executor {
    /// Finishes or rolls back every operation left unfinished, oldest
    /// first, deciding from the files (see the module documentation), and
    /// reports each. Idempotent. Call it at start-up, before any new
    /// operation, and again while [`Executor::has_pending`] (a rotation
    /// waits for the runtime to be reachable).
    pub fn recover(&mut self) -> Vec<RecoveryReport> {
        let mut reports = Vec::new();
        for (id, intent, phase) in self.journal.pending() {
            let outcome = self.recover_one(id, &intent, phase);
            let outcome = self.bounded(id, &intent, outcome);
            match &outcome {
                Ok(how) => {
                    tracing::info!(id = %id, op = intent.op(), ?phase, outcome = ?how, "recovered an interrupted operation");
                }
                Err(e) => {
                    tracing::warn!(id = %id, op = intent.op(), ?phase, error = %e, "cannot recover an interrupted operation yet");
                }
            }
            reports.push(RecoveryReport {
                id,
                intent,
                phase,
                outcome,
            });
        }
        reports
    }

    /// Counts the failures of recovering `id`; after
    /// [`RECOVERY_TRIES`] of them, for a reason that is not the runtime's
    /// (away, or a planted name that pauses the rotation), the intent is
    /// given up: its temporary file removed if it is still there, the
    /// files left as the reader serves them, the intent completed, so that
    /// nothing stays blocked behind it (`podlog_lifecycle_abandoned_total`,
    /// logged once).
    fn bounded(
        &mut self,
        id: EntryId,
        intent: &Intent,
        outcome: Result<Recovered, LifecycleError>,
    ) -> Result<Recovered, LifecycleError> {
        let e = match outcome {
            Ok(how) => {
                self.recovery_failures.remove(&id);
                return Ok(how);
            }
            Err(
                e @ (LifecycleError::ReopenUnavailable { .. } | LifecycleError::Redirected { .. }),
            ) => return Err(e),
            Err(e) => e,
        };
        let n = self.recovery_failures.entry(id).or_insert(0);
        *n += 1;
        if *n < RECOVERY_TRIES {
            return Err(e);
        }
        self.recovery_failures.remove(&id);
        let dir = intent.dir();
        let temp = match intent {
            Intent::Compress { temp, .. } | Intent::Trim { temp, .. } => Some(temp.as_str()),
            Intent::DropSpan { trim: Some(t), .. } => Some(t.temp.as_str()),
            _ => None,
        };
        if let Some(t) = temp {
            let _ = self.remove(&dir, t, "remove the temporary file");
        }
        self.journal.complete(id)?;
        crate::telemetry::lifecycle_abandoned(intent.op(), &e.to_string());
        Ok(Recovered::RolledBack)
    }

    fn recover_one(
        &mut self,
        id: EntryId,
        intent: &Intent,
        phase: Phase,
    ) -> Result<Recovered, LifecycleError> {
        let dir = intent.dir();
        let how = match intent {
            Intent::Rotate {
                active,
                rotated,
                container_id,
                ..
            } => self.recover_rotate(id, &dir, active, rotated, container_id, phase)?,
            Intent::Compress {
                source,
                temp,
                target,
                ..
            } => self.recover_compress(id, &dir, source, temp, target, phase)?,
            Intent::Trim { file, temp, .. } => self.recover_trim(id, &dir, file, temp, phase)?,
            Intent::Delete { file, .. } => {
                self.remove(&dir, file, "delete")?;
                self.sync_dir(&dir, "delete: sync the directory")?;
                Recovered::Finished
            }
            Intent::DropSpan { files, trim, .. } => {
                self.recover_drop(id, &dir, files, trim.as_ref(), phase)?
            }
        };
        self.journal.complete(id)?;
        Ok(how)
    }

    fn recover_rotate(
        &mut self,
        id: EntryId,
        dir: &[&str],
        active: &str,
        rotated: &str,
        container_id: &str,
        phase: Phase,
    ) -> Result<Recovered, LifecycleError> {
        if phase == Phase::Reopened {
            return Ok(Recovered::Finished);
        }
        let files = self.files(dir)?;
        let has = |n: &str| files.iter().any(|f| f == n);
        match (has(active), has(rotated)) {
            // Never renamed (Begun), or an undo finished (Renamed).
            (_, false) if phase == Phase::Begun => return Ok(Recovered::RolledBack),
            (true, false) => return Ok(Recovered::RolledBack),
            (false, false) => {
                tracing::warn!(dir = ?dir, rotated, "a rotated file is gone, and no new log file exists");
                return Ok(Recovered::Finished);
            }
            // The runtime reopened and wrote into the new file: a plain
            // file beneath the root with content (podlogd's own file stays
            // empty until the runtime reopens onto it).
            (true, true)
                if self
                    .root
                    .entry(&at(dir, active))
                    .is_ok_and(|e| e.regular && e.links == 1 && e.size > 0) =>
            {
                return Ok(Recovered::Finished)
            }
            // Renamed; an empty new `active` (podlogd's, or the runtime's
            // before its first line), something planted, or none: reopen
            // onto a file of podlogd's, guarded. Asking again is harmless
            // when the runtime reopened already.
            (_, true) => {}
        }
        self.journal.advance(id, Phase::Renamed)?;
        let path = self.path(dir, rotated);
        match self.reopen_guarded(dir, active, Some(rotated), container_id)? {
            Ok(()) => {
                self.journal.advance(id, Phase::Reopened)?;
                Ok(Recovered::Finished)
            }
            Err(source @ ReopenError::Refused { .. }) => {
                let undo = self.undo_rotate(dir, active, rotated)?;
                tracing::warn!(path = %path.display(), error = %source, %undo, "the runtime refused to reopen a rotated log");
                Ok(match undo {
                    Undo::RolledBack => Recovered::RolledBack,
                    Undo::KeptBoth => Recovered::Finished,
                })
            }
            Err(source @ ReopenError::Unavailable { .. }) => {
                self.remove_unused_active(dir, active)?;
                Err(LifecycleError::ReopenUnavailable { path, source })
            }
        }
    }

    fn recover_compress(
        &mut self,
        id: EntryId,
        dir: &[&str],
        source: &str,
        temp: &str,
        target: &str,
        phase: Phase,
    ) -> Result<Recovered, LifecycleError> {
        match phase {
            Phase::SourceDeleted => return Ok(Recovered::Finished),
            Phase::Begun => {
                self.remove(dir, temp, "compress: remove the temporary file")?;
                self.sync_dir(dir, "compress: sync the directory")?;
                return Ok(Recovered::RolledBack);
            }
            _ => {}
        }
        if phase == Phase::TempWritten && self.files(dir)?.iter().any(|f| f == temp) {
            match self.root.rename(&at(dir, temp), &at(dir, target)) {
                Ok(()) => {}
                Err(e) if e.is_exists() => {
                    // Not ours: leave it, and the plain file, alone.
                    self.remove(dir, temp, "compress: remove the temporary file")?;
                    self.sync_dir(dir, "compress: sync the directory")?;
                    return Ok(Recovered::RolledBack);
                }
                Err(e) => return Err(fs("compress: rename the temporary file")(e)),
            }
            self.sync_dir(dir, "compress: sync the directory")?;
            self.journal.advance(id, Phase::Renamed)?;
        }
        let files = self.files(dir)?;
        let has = |n: &str| files.iter().any(|f| f == n);
        match (has(target), has(source)) {
            (true, true) => {
                if let Err(e) = self.verify_archive(dir, source, target) {
                    tracing::error!(error = %e, "a compressed file does not hold its source's content; removing it and keeping the plain file");
                    self.remove(dir, target, "compress: remove the broken compressed file")?;
                    self.sync_dir(dir, "compress: sync the directory")?;
                    return Ok(Recovered::RolledBack);
                }
                self.remove(dir, source, "compress: delete the plain file")?;
                self.sync_dir(dir, "compress: sync the directory")?;
                self.journal.advance(id, Phase::SourceDeleted)?;
                Ok(Recovered::Finished)
            }
            (true, false) => Ok(Recovered::Finished),
            (false, true) => Ok(Recovered::RolledBack),
            (false, false) => {
                tracing::warn!(dir = ?dir, source, "a file being compressed is gone, plain and compressed");
                Ok(Recovered::Finished)
            }
        }
    }

    /// Checks that `target` decompresses completely, with the codec its
    /// name ends in, to exactly the bytes of `source`.
    fn verify_archive(
        &self,
        dir: &[&str],
        source: &str,
        target: &str,
    ) -> Result<(), LifecycleError> {
        let bad = |reason| LifecycleError::BadArchive {
            target: self.path(dir, target),
            source_path: self.path(dir, source),
            reason,
        };
        let Some((_, codec)) = Codec::strip(target) else {
            return Err(bad("its name ends in no codec's extension"));
        };
        let archive = self
            .root
            .open_file(&at(dir, target))
            .map_err(fs("compress: open the compressed file"))?;
        let plain = self
            .root
            .open_file(&at(dir, source))
            .map_err(fs("compress: open the plain file"))?;
        let Ok(dec) = codec.decoder(&archive.file) else {
            return Err(bad("it does not decompress"));
        };
        match same_content(dec, &plain.file) {
            Ok(true) => Ok(()),
            Ok(false) => Err(bad("the content differs")),
            Err(_) => Err(bad("it does not decompress")),
        }
    }

    fn recover_drop(
        &mut self,
        id: EntryId,
        dir: &[&str],
        files: &[String],
        trim: Option<&SpanTrim>,
        phase: Phase,
    ) -> Result<Recovered, LifecycleError> {
        if phase == Phase::Replaced {
            return Ok(Recovered::Finished);
        }
        if let Some(t) = trim {
            if phase == Phase::Begun {
                self.remove(dir, &t.temp, "drop: remove the temporary file")?;
                self.sync_dir(dir, "drop: sync the directory")?;
                return Ok(Recovered::RolledBack);
            }
        }
        // Listed before listings are held: the lock is not reentrant.
        let names = self.files(dir)?;
        let has = |n: &str| names.iter().any(|f| f == n);
        let root = self.root.clone();
        let held = root.hold_listings();
        if let Some(t) = trim.filter(|t| has(&t.temp)) {
            if has(&t.file) {
                self.root
                    .replace(&at(dir, &t.temp), &at(dir, &t.file))
                    .map_err(fs("drop: replace the trimmed file"))?;
            } else {
                // The file was deleted meanwhile: do not bring it back.
                self.remove(dir, &t.temp, "drop: remove the temporary file")?;
            }
        }
        for f in files {
            self.remove(dir, f, "drop: delete")?;
        }
        drop(held);
        self.sync_dir(dir, "drop: sync the directory")?;
        self.journal.advance(id, Phase::Replaced)?;
        Ok(Recovered::Finished)
    }

    fn recover_trim(
        &mut self,
        id: EntryId,
        dir: &[&str],
        file: &str,
        temp: &str,
        phase: Phase,
    ) -> Result<Recovered, LifecycleError> {
        match phase {
            Phase::Replaced => Ok(Recovered::Finished),
            Phase::TempWritten => {
                let files = self.files(dir)?;
                let has = |n: &str| files.iter().any(|f| f == n);
                match (has(temp), has(file)) {
                    (false, _) => Ok(Recovered::Finished),
                    (true, true) => {
                        self.root
                            .replace(&at(dir, temp), &at(dir, file))
                            .map_err(fs("trim: replace the file"))?;
                        self.sync_dir(dir, "trim: sync the directory")?;
                        self.journal.advance(id, Phase::Replaced)?;
                        Ok(Recovered::Finished)
                    }
                    (true, false) => {
                        // The file was deleted meanwhile: do not bring it back.
                        self.remove(dir, temp, "trim: remove the temporary file")?;
                        self.sync_dir(dir, "trim: sync the directory")?;
                        Ok(Recovered::Finished)
                    }
                }
            }
            _ => {
                self.remove(dir, temp, "trim: remove the temporary file")?;
                self.sync_dir(dir, "trim: sync the directory")?;
                Ok(Recovered::RolledBack)
            }
        }
    }
}
