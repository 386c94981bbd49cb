//! The lifecycle executor: carries out the retention planner's actions
//! ([`podlog_policy::Action`]) on one container's files, crash-safely.
//!
//! Each operation is recorded in the intent [`Journal`] before its first
//! step and advanced after each step that is durably done (see the journal
//! for the phases); a kill at any point leaves files that the reader
//! ([`crate::fs::fileset`]) serves without loss or duplication, and
//! [`Executor::recover`] finishes or rolls the operation back at the next
//! start-up, from what the files show.
//!
//! - [`Executor::rotate`]: rename `N.log` to `N.log.<UTC YYYYMMDD-HHMMSS>`
//!   (see [`naming`] for same-second rotations), then ask the runtime to
//!   reopen the log ([`Reopener`]). Between the two the runtime still
//!   writes into the renamed file, which the reader already serves as the
//!   newest rotated file; after the reopen the new `N.log` continues it.
//!   If the runtime refuses, the rename is undone.
//! - [`Executor::compress`]: gzip or zstd a rotated file into
//!   a temporary file of an unpredictable name (`<file>.gz.<random>.tmp`,
//!   see [`temp_name`]), rename that to `<file>.gz` or
//!   `<file>.zst`, delete the plain file. While both exist the reader serves
//!   the plain one.
//! - [`Executor::trim_head`]: rewrite a rotated file without its oldest
//!   bytes, cut at an event boundary, through a temporary file that
//!   replaces it atomically.
//! - [`Executor::delete`]: remove a file.
//! - [`Executor::drop_span`]: delete files and trim the head of the next
//!   one as one step, when an event spans them (a `P…F` chain or a
//!   multi-line event across a rotation): the rest of the next file is
//!   copied into a temporary file first; then, with listings held
//!   ([`SafeRoot::hold_listings`]), it replaces that file and the others are
//!   unlinked, back to back. A reader of the file set sees the files as
//!   before or as after, never a part of the event without the rest.
//!
//! Every file operation goes through the log root's [`SafeRoot`], beneath
//! which nothing is followed.
//!
//! What this module leaves to others: deciding what to do (the planner),
//! when to do it and on which thread (the lifecycle [`manager`](super::manager)),
//! metrics (the caller counts what the results report: rotations, reopen
//! failures, compressions, deletions, trims, bytes freed).
//!
//! # Errors and pending intents
//!
//! An operation that fails before its first change to the files, or whose
//! change is undone, completes its intent. One that fails after a change
//! it cannot undo (an fsync error, the runtime unreachable after the
//! rename) leaves its intent pending: [`Executor::has_pending`] is then
//! true, and [`Executor::recover`], which is idempotent, finishes or rolls
//! it back. Call it at start-up and whenever something is pending. While
//! an intent is pending, the journal refuses any other operation on its
//! files.

mod compress;
mod guard;
mod recover;
mod retain;

use std::fs::File;
use std::io::{self, BufWriter, Read as _, Seek as _, Write as _};
use std::os::unix::fs::{FileExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::sync::Arc;

use podlog_policy::Compress;

use crate::fs::fileset::{self, Codec, LogFile};
use crate::fs::safe_open::{Kind, SafeOpenError, SafeRoot};
use crate::lifecycle::journal::{EntryId, Intent, Journal, JournalError, Phase, SpanTrim};

pub use recover::Recovered;

use super::fault::{Fault, FaultPoints};
use super::naming;
use super::reopen::{ReopenError, Reopener, RuntimeReopener};

/// Mode of files the executor creates when the source's mode is unknown
/// (what containerd gives container logs).
const DEFAULT_MODE: u32 = 0o640;
/// Copy buffer size.
const CHUNK: usize = 64 << 10;

/// A rotation done: the runtime writes a new `N.log`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotated {
    /// The rotated file's name (`N.log.<suffix>`).
    pub rotated: String,
    /// Its size once the runtime reopened, in bytes; `None` if it could not
    /// be read then.
    pub(crate) bytes: Option<u64>,
}

/// A compression done: `target` replaced `source`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compressed {
    /// The compressed file's name (`<source>.gz` or `<source>.zst`).
    pub(crate) target: String,
    /// Size of the plain file, in bytes.
    pub(crate) source_bytes: u64,
    /// Size of the compressed file, in bytes.
    pub(crate) compressed_bytes: u64,
}

impl Compressed {
    /// Disk space given back, in bytes (0 if compression made it larger).
    pub(crate) fn bytes_freed(&self) -> u64 {
        self.source_bytes.saturating_sub(self.compressed_bytes)
    }
}

/// A trim done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trimmed {
    /// Bytes dropped from the head (the offset), 0 when nothing was to do.
    pub(crate) bytes_freed: u64,
    /// Bytes the file keeps.
    pub(crate) kept_bytes: u64,
}

/// A deletion done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// The file's size before, in bytes; 0 when it was already gone.
    pub(crate) bytes_freed: u64,
}

/// A span dropped ([`Executor::drop_span`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The deleted files' sizes before (0 for one already gone) plus the
    /// bytes trimmed, in bytes.
    pub(crate) bytes_freed: u64,
}

/// What became of a rotation the runtime refused to reopen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Undo {
    /// The rotated file was renamed back to `N.log`: as before the rotation.
    RolledBack,
    /// `N.log` exists again (the runtime reopened after all, or wrote a new
    /// file): both files are kept, the rotated one first.
    KeptBoth,
}

impl std::fmt::Display for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Undo::RolledBack => "the rename was undone",
            Undo::KeptBoth => "a new log file exists anyway, so both files are kept",
        })
    }
}

/// An error of the executor, naming the file and what failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{step}: {source}")]
    Fs {
        step: &'static str,
        #[source]
        source: SafeOpenError,
    },
    #[error("{step} {}: {source}", .path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not {want}", .path.display())]
    WrongFile { path: PathBuf, want: &'static str },
    #[error("compression {codec:?}: {reason}")]
    Codec {
        codec: &'static str,
        reason: &'static str,
    },
    #[error("{}: no rotation name left after {after:?}", .dir.display())]
    NoFreeName { dir: PathBuf, after: String },
    #[error("{} already exists", .path.display())]
    Exists { path: PathBuf },
    #[error("{} changed while it was copied ({expected} bytes, then {found})", .path.display())]
    Changed {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{}: offset {offset} is not an event boundary (the byte before it is not a newline)", .path.display())]
    NotBoundary { path: PathBuf, offset: u64 },
    #[error("{}: offset {offset} is beyond its end ({size} bytes)", .path.display())]
    BeyondEnd {
        path: PathBuf,
        offset: u64,
        size: u64,
    },
    #[error("rotation of {} not done: {source}; {undo}", .path.display())]
    ReopenRefused {
        /// The rotated name.
        path: PathBuf,
        undo: Undo,
        #[source]
        source: ReopenError,
    },
    #[error("{} stays renamed, the runtime still writing to it, until recovery reopens the log: {source}", .path.display())]
    ReopenUnavailable {
        /// The rotated name.
        path: PathBuf,
        #[source]
        source: ReopenError,
    },
    /// The runtime is not connected: nothing is renamed (see
    /// [`Reopener::connected`]).
    #[error("{} not rotated while the container runtime is not connected (a renamed file would be written on until the runtime reopens the log); rotated once it is", .path.display())]
    RuntimeAway { path: PathBuf },
    /// Something planted under the active name (see `guard`): the
    /// rotation stays pending and the container's rotation paused.
    #[error("{} is {found}, not a plain file: the runtime is not asked to reopen onto it; rotation paused", .path.display())]
    Redirected { path: PathBuf, found: String },
    #[error("{}: no file to delete", .dir.display())]
    NothingToDelete { dir: PathBuf },
    #[error("{} does not hold the content of {}: {reason}", .target.display(), .source_path.display())]
    BadArchive {
        target: PathBuf,
        source_path: PathBuf,
        reason: &'static str,
    },
}

/// A temporary name for `what` (`<file>.gz`, `<file>.trim`), podlog's own
/// and unpredictable: `<what>.<16 hex digits>.tmp`, random from the
/// kernel. The intent records it, so recovery finds it; a `.tmp` entry
/// planted beside the files cannot take it or be taken for it.
fn temp_name(what: &str) -> String {
    use ring::rand::SecureRandom as _;
    let mut r = [0u8; 8];
    // The kernel's random source does not fail on Linux once booted; the
    // clock is a fallback that still differs per call.
    if ring::rand::SystemRandom::new().fill(&mut r).is_err() {
        r = crate::cri::now_nanos().to_le_bytes();
    }
    format!("{what}.{:016x}.tmp", u64::from_le_bytes(r))
}

/// `dir` followed by `name`, for [`SafeRoot`] calls.
fn at<'a>(dir: &[&'a str], name: &'a str) -> Vec<&'a str> {
    let mut v = dir.to_vec();
    v.push(name);
    v
}

fn fs(step: &'static str) -> impl FnOnce(SafeOpenError) -> LifecycleError {
    move |source| LifecycleError::Fs { step, source }
}

/// The file if it is a rotated, uncompressed log file.
fn rotated_plain(name: &str) -> Option<LogFile> {
    fileset::classify(name).filter(|f| f.rotated.is_some() && !f.compressed)
}

/// Reads until `buf` is full or the end; returns the bytes read.
fn read_full(r: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The permission bits of `f`, for a file that replaces it.
fn mode_of(f: &File) -> u32 {
    f.metadata()
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(DEFAULT_MODE)
}

/// Carries out lifecycle actions on files beneath the log root. See the
/// module documentation.
pub struct Executor {
    root: Arc<SafeRoot>,
    journal: Journal,
    reopener: Box<dyn Reopener + Send>,
    fault: FaultPoints,
    /// Containers whose rotation is paused (see `guard`).
    paused: Arc<super::Paused>,
    /// Failed recoveries per intent (see `recover`).
    recovery_failures: std::collections::HashMap<EntryId, u32>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("root", &self.root.path())
            .field("pending", &self.journal.pending().len())
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

// === impl Executor ===

impl Executor {
    /// An executor on the log root `root`, recording in `journal` (opened on
    /// the state root), reopening logs with `reopener`. Fault points come
    /// from `PODLOG_FAULT` ([`FaultPoints::from_env`]; none in a release
    /// build). Call [`Executor::recover`] before anything else.
    pub fn new(root: Arc<SafeRoot>, journal: Journal, reopener: Box<dyn Reopener + Send>) -> Self {
        Self {
            root,
            journal,
            reopener,
            fault: FaultPoints::from_env(),
            paused: Arc::default(),
            recovery_failures: std::collections::HashMap::new(),
        }
    }

    /// The containers whose rotation is paused, with the reasons; shared.
    pub fn paused(&self) -> Arc<super::Paused> {
        self.paused.clone()
    }

    /// Replaces the fault points (tests).
    pub fn with_fault_points(mut self, fault: FaultPoints) -> Self {
        self.fault = fault;
        self
    }

    /// Whether an operation is left unfinished: [`Executor::recover`] has
    /// something to do.
    pub fn has_pending(&self) -> bool {
        !self.journal.pending().is_empty()
    }

    /// The journal records found corrupt at start-up (see
    /// [`Journal::corrupt`]): an operator has to look at their files.
    pub fn corrupt(&self) -> &[JournalError] {
        self.journal.corrupt()
    }

    fn path(&self, dir: &[&str], name: &str) -> PathBuf {
        let mut p = self.root.path().to_owned();
        p.extend(dir);
        p.push(name);
        p
    }

    /// The error of step `step`'s rename to `to` in `dir`: a name taken
    /// meanwhile is [`LifecycleError::Exists`].
    fn rename_failed(
        &self,
        e: SafeOpenError,
        dir: &[&str],
        to: &str,
        step: &'static str,
    ) -> LifecycleError {
        if e.is_exists() {
            LifecycleError::Exists {
                path: self.path(dir, to),
            }
        } else {
            fs(step)(e)
        }
    }

    /// The regular files in `dir`; none when the directory is gone.
    fn files(&self, dir: &[&str]) -> Result<Vec<String>, LifecycleError> {
        match self.root.list_dir(dir) {
            Ok(entries) => Ok(entries
                .into_iter()
                .filter(|(_, k)| *k == Kind::File)
                .map(|(n, _)| n)
                .collect()),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(fs("list the container directory")(e)),
        }
    }

    /// Whether the name `name` is taken in `dir` (by anything: a symlink or
    /// a directory counts).
    fn taken(&self, dir: &[&str], name: &str) -> Result<bool, LifecycleError> {
        match self.root.open_file(&at(dir, name)) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(SafeOpenError::InvalidComponent { component }) => Err(LifecycleError::Fs {
                step: "check a name",
                source: SafeOpenError::InvalidComponent { component },
            }),
            Err(_) => Ok(true),
        }
    }

    /// Fsyncs `dir`; a directory that is gone has nothing to make durable.
    fn sync_dir(&self, dir: &[&str], step: &'static str) -> Result<(), LifecycleError> {
        match self.root.fsync_dir(dir) {
            Err(e) if !e.is_not_found() => Err(fs(step)(e)),
            _ => Ok(()),
        }
    }

    /// Removes `name` if it exists; true when it did.
    fn remove(&self, dir: &[&str], name: &str, step: &'static str) -> Result<bool, LifecycleError> {
        match self.root.unlink(&at(dir, name)) {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(fs(step)(e)),
        }
    }

    /// Gives up an operation whose only change is the temporary file
    /// `temp`: removes it and completes the intent. Best effort: if either
    /// fails, the intent stays pending and recovery removes the file.
    fn abandon(&mut self, id: EntryId, dir: &[&str], temp: &str) {
        let removed = self
            .remove(dir, temp, "remove the temporary file")
            .and_then(|_| self.sync_dir(dir, "sync the directory"));
        let done = removed.and_then(|()| self.journal.complete(id).map_err(Into::into));
        if let Err(e) = done {
            tracing::warn!(error = %e, id = %id, "cannot abandon an operation; recovery will");
        }
    }

    // --- rotate ---

    /// Rotates the log of attempt `attempt` in the container directory
    /// `dir` (`[pod directory, container]` beneath the log root), written
    /// by container `container_id`, at `now` (Unix nanoseconds): renames
    /// `N.log` to `N.log.<suffix>` ([`naming::rotated_suffix`]) without
    /// replacing anything, then asks the runtime to reopen the log.
    ///
    /// # Errors
    ///
    /// - [`LifecycleError::ReopenRefused`]: the runtime refused; the rename
    ///   was undone ([`Undo::RolledBack`]), or a new `N.log` exists anyway
    ///   and both files are kept ([`Undo::KeptBoth`]). Nothing is pending.
    /// - [`LifecycleError::RuntimeAway`]: the runtime is not connected;
    ///   nothing was renamed.
    /// - [`LifecycleError::ReopenUnavailable`]: the runtime could not be
    ///   asked (it went away meanwhile). The file stays renamed and the
    ///   runtime keeps writing into it (the reader serves it); the intent
    ///   stays pending and [`Executor::recover`] asks again (or undoes it).
    /// - `N.log` missing, the name taken meanwhile, a journal conflict (an
    ///   operation on these files is pending), or a failed step (see the
    ///   module documentation for what stays pending).
    pub fn rotate(
        &mut self,
        dir: [&str; 2],
        attempt: u32,
        container_id: &str,
        now_nanos: i64,
    ) -> Result<Rotated, LifecycleError> {
        let active = format!("{attempt}.log");
        if !self.reopener.connected() {
            return Err(LifecycleError::RuntimeAway {
                path: self.path(&dir, &active),
            });
        }
        self.check_active(&dir, &active)?;
        let names = self.files(&dir)?;
        let suffix = naming::rotated_suffix(names.iter().map(String::as_str), attempt, now_nanos)
            .ok_or_else(|| LifecycleError::NoFreeName {
            dir: self.path(&dir, ""),
            after: names
                .iter()
                .filter(|n| n.starts_with(&format!("{active}.")))
                .max()
                .cloned()
                .unwrap_or_default(),
        })?;
        let rotated = format!("{active}.{suffix}");
        let id = self.journal.begin(Intent::Rotate {
            dir: dir.iter().map(|s| (*s).to_owned()).collect(),
            active: active.clone(),
            rotated: rotated.clone(),
            container_id: container_id.to_owned(),
        })?;
        self.fault.hit(Fault::RotateBegun);
        if let Err(e) = self.root.rename(&at(&dir, &active), &at(&dir, &rotated)) {
            // Nothing was renamed.
            self.journal.complete(id)?;
            return Err(self.rename_failed(e, &dir, &rotated, "rotate: rename the log file"));
        }
        // The new file at once: the name is free for as short a time as
        // can be. Something planted meanwhile is found here; the rotation
        // then stays pending (below). Nothing is synced or journaled
        // before the reopen: from here until then the runtime writes into
        // the renamed file while a tailer that follows the name (rsyslog's
        // imfile) reads the new one already, so every millisecond is lines
        // it misses. `Begun` with `rotated` present replays as `Renamed`
        // (see the journal).
        let made = self.own_active(&dir, &active, Some(&rotated));
        self.fault.hit(Fault::RotateAfterRename);
        if let Err(e) = made {
            self.sync_dir(&dir, "rotate: sync the directory")?;
            return Err(e);
        }
        let path = self.path(&dir, &rotated);
        // A planted name leaves the rotation pending (Redirected): the
        // runtime keeps writing the rotated file, and recovery tries again.
        match self.reopen_guarded(&dir, &active, Some(&rotated), container_id)? {
            Ok(()) => {}
            Err(source @ ReopenError::Refused { .. }) => {
                let undo = self.undo_rotate(&dir, &active, &rotated)?;
                self.journal.complete(id)?;
                tracing::warn!(path = %path.display(), error = %source, %undo, "the runtime refused to reopen a rotated log");
                return Err(LifecycleError::ReopenRefused { path, undo, source });
            }
            Err(source @ ReopenError::Unavailable { .. }) => {
                // Meanwhile the rotated file is the newest, as the runtime
                // writes it; recovery makes the new file again.
                self.remove_unused_active(&dir, &active)?;
                self.sync_dir(&dir, "rotate: sync the directory")?;
                self.journal.advance(id, Phase::Renamed)?;
                tracing::warn!(path = %path.display(), error = %source, "the runtime is unavailable to reopen a rotated log; recovery retries");
                return Err(LifecycleError::ReopenUnavailable { path, source });
            }
        }
        self.fault.hit(Fault::RotateAfterReopen);
        self.sync_dir(&dir, "rotate: sync the directory")?;
        self.journal.advance(id, Phase::Reopened)?;
        self.fault.hit(Fault::RotateReopened);
        self.journal.complete(id)?;
        let bytes = self
            .root
            .open_file(&at(&dir, &rotated))
            .ok()
            .map(|o| o.size);
        tracing::info!(path = %path.display(), container_id, "rotated");
        Ok(Rotated { rotated, bytes })
    }

    /// Renames `rotated` back to `active` unless `active` holds something:
    /// the empty file podlogd made for the reopen the runtime refused is
    /// removed first (the runtime never opened it); anything else under
    /// the name keeps both.
    fn undo_rotate(
        &self,
        dir: &[&str],
        active: &str,
        rotated: &str,
    ) -> Result<Undo, LifecycleError> {
        self.remove_unused_active(dir, active)?;
        match self.root.rename(&at(dir, rotated), &at(dir, active)) {
            Ok(()) => {
                self.sync_dir(dir, "rotate: sync the directory")?;
                Ok(Undo::RolledBack)
            }
            Err(e) if e.is_exists() => Ok(Undo::KeptBoth),
            Err(e) => Err(fs("rotate: rename the log file back")(e)),
        }
    }

    /// Creates the temporary file `temp` (a name of [`temp_name`]'s, which
    /// nothing else can have taken). Nothing under another name is ever
    /// removed or followed to make room: a planted `.tmp` entry blocks
    /// nothing.
    fn create_temp(&self, dir: &[&str], temp: &str, mode: u32) -> Result<File, LifecycleError> {
        self.root
            .create_new(&at(dir, temp), mode)
            .map_err(fs("create the temporary file"))
    }

    /// Refuses a copy of a file that grew or shrank while it was read:
    /// something still writes it.
    fn check_unchanged(
        &self,
        f: &File,
        path: &std::path::Path,
        size: u64,
        read: u64,
    ) -> Result<(), LifecycleError> {
        let now = f
            .metadata()
            .map_err(|source| LifecycleError::Io {
                step: "stat",
                path: path.to_owned(),
                source,
            })?
            .len();
        if read != size || now != size {
            return Err(LifecycleError::Changed {
                path: path.to_owned(),
                expected: size,
                found: if read != size { read } else { now },
            });
        }
        Ok(())
    }

    // --- trim ---
}

/// The head trim of [`Executor::drop_span`], checked.
struct Cut<'a> {
    file: &'a str,
    /// The first byte kept, above 0.
    offset: u64,
    src: crate::fs::safe_open::Opened,
    path: PathBuf,
    temp: String,
}

/// The rest of a file from an event boundary, to be copied into a
/// temporary file that replaces it.
#[derive(Clone, Copy)]
struct Tail<'a> {
    /// The file, open.
    src: &'a File,
    /// Its path, for messages.
    path: &'a std::path::Path,
    /// Its size when opened, in bytes: it must not change while copied.
    size: u64,
    /// The first byte kept.
    offset: u64,
}

/// Checks that `offset` is an event boundary of the file `f` of size
/// `size` at `path`: within it and, unless 0, just after a newline.
fn check_boundary(
    f: &File,
    path: &std::path::Path,
    size: u64,
    offset: u64,
) -> Result<(), LifecycleError> {
    if offset > size {
        return Err(LifecycleError::BeyondEnd {
            path: path.to_owned(),
            offset,
            size,
        });
    }
    if offset == 0 {
        return Ok(());
    }
    let mut byte = [0u8; 1];
    let n = f
        .read_at(&mut byte, offset - 1)
        .map_err(|source| LifecycleError::Io {
            step: "read the byte before the cut",
            path: path.to_owned(),
            source,
        })?;
    if n != 1 || byte[0] != b'\n' {
        return Err(LifecycleError::NotBoundary {
            path: path.to_owned(),
            offset,
        });
    }
    Ok(())
}

/// Opens the executor for a running agent: the journal under `state_dir`
/// (created if missing; the directory is the operator's, not a log path),
/// the runtime as the reopener.
///
/// # Errors
///
/// The directory cannot be created or opened, or the journal cannot be
/// opened (for instance another podlogd holds it).
pub(crate) fn open_executor(
    log_root: Arc<SafeRoot>,
    state_dir: &std::path::Path,
    runtime: Arc<crate::node::runtime::Runtime>,
    handle: tokio::runtime::Handle,
) -> anyhow::Result<Executor> {
    std::fs::create_dir_all(state_dir)?;
    let state = Arc::new(SafeRoot::open(state_dir)?);
    let journal = Journal::open(state)?;
    for c in journal.corrupt() {
        tracing::error!(error = %c, "a lifecycle journal record is corrupt and was set aside");
    }
    Ok(Executor::new(
        log_root,
        journal,
        Box::new(RuntimeReopener::new(runtime, handle)),
    ))
}

#[cfg(test)]
mod tests;
