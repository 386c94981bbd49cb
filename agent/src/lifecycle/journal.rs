//! An intent journal that makes multi-step file operations crash-safe.
//!
//! Rotation, compression, trimming, deletion and dropping events that span
//! files each take several steps (rename, reopen, write, fsync, rename,
//! unlink). Before the first step the lifecycle manager records an
//! [`Intent`] here ([`Journal::begin`]); after each step it records the
//! [`Phase`] that step reached ([`Journal::advance`]); when the operation
//! is finished, or rolled back, it removes the record
//! ([`Journal::complete`]). After a crash,
//! [`Journal::pending`] lists what was in flight, with the last phase that
//! is known to be done, and the caller finishes or rolls back each one. The
//! journal only records and lists; it never touches the log files and never
//! decides.
//!
//! # On disk
//!
//! One file per in-flight intent, `intents/<id>.json` beneath the state
//! root (`id` with 20 digits, so names sort by id). Each write goes to
//! `<name>.tmp`, which is fsynced, renamed into place and followed by an
//! fsync of `intents/`, so a record is either the old one or the new one,
//! never a torn mix. A record is a version-tagged serde enum wrapped in an
//! envelope with a CRC-32 of its exact bytes; the whole file stays valid
//! JSON for an operator's `jq`:
//!
//! ```text
//! {"crc32":"1c291ca3","record":{"v":"1","id":7,"intent":{"op":"rotate",...},"phase":"renamed"}}
//! ```
//!
//! At [`Journal::open`], leftover `*.tmp` files (a write cut by a crash) are
//! removed; a record that cannot be read, fails its checksum or does not
//! parse is renamed to `<name>.corrupt`, logged with `error!` and reported by
//! [`Journal::corrupt`] (then, and at every later start-up while the file is
//! there). `intents/` is held with an exclusive `flock`, so two daemons
//! cannot share one state directory.
//!
//! Ids never repeat, across restarts too, even when every record has been
//! completed: `intents/ids.json` durably reserves a block of ids before the
//! first of them is used, and the next id is above both that reservation
//! and every id found in the directory.
//!
//! # Replaying
//!
//! A phase is recorded only after its step is durably done, so the recorded
//! phase is a lower bound: the next step may or may not have happened too.
//! Each step is therefore checked against the files (which names exist) and
//! redone only if it is not done yet, and every replay must be idempotent.
//! With `dir` the container's log directory beneath the *log* root:
//!
//! - [`Intent::Rotate`]: `Begun` → rename `active` to `rotated`
//!   (`RENAME_NOREPLACE`), make the new `active` →
//!   `ReopenContainerLog(container_id)` → fsync the directory → `Reopened`
//!   → complete (`Renamed` is recorded by a replay only: nothing is written
//!   between the rename and the reopen, the window in which the runtime
//!   writes into the renamed file). Replaying `Begun`: if `rotated` is missing,
//!   the rename did not happen (complete, or start over); else treat as
//!   `Renamed`. Replaying `Renamed`: if `active` exists again, the runtime
//!   reopened (complete); if `rotated` is missing, an undo finished
//!   (complete); else call reopen again, or undo by renaming `rotated` back
//!   to `active` if the runtime refuses, then complete.
//! - [`Intent::Compress`]: `Begun` → write and fsync `temp` →
//!   `TempWritten` → rename `temp` to `target` (`RENAME_NOREPLACE`), fsync
//!   the directory → `Renamed` → unlink `source`, fsync → `SourceDeleted`
//!   → complete. Replaying `Begun`: `temp` may be partial, so remove it,
//!   then start over or complete. `TempWritten`: if `temp` exists, rename
//!   it; else it was renamed. `Renamed`: unlink `source` if it exists.
//!   While `Renamed`, `source` and `target` hold the same events; readers
//!   must prefer one of them.
//! - [`Intent::Trim`]: `Begun` → write `file[offset..]` to `temp`, fsync →
//!   `TempWritten` → replace `file` with `temp` (plain rename, see
//!   [`SafeRoot::replace`]: the new content has to take the old name, which
//!   `RENAME_NOREPLACE` cannot do), fsync the directory → `Replaced` →
//!   complete. Replaying `Begun`: remove the possibly partial `temp`.
//!   `TempWritten`: if `temp` exists, replace; if not, it was replaced
//!   (never cut again at `offset`, which is relative to the old content).
//!   Trim only files nobody appends to (rotated files): bytes appended
//!   between the copy and the rename would be lost.
//! - [`Intent::Delete`]: `Begun` → unlink `file`, fsync → complete.
//!   Replaying `Begun`: unlink `file` if it exists.
//! - [`Intent::DropSpan`] with a trim: `Begun` → write
//!   `trim.file[trim.offset..]` to `trim.temp`, fsync → `TempWritten` →
//!   with listings held ([`SafeRoot::hold_listings`]), replace
//!   `trim.file` with `trim.temp`, then unlink each of `files`; fsync the
//!   directory → `Replaced` → complete. Replaying `Begun`: remove the
//!   possibly partial `temp` (nothing else was touched). `TempWritten`: if
//!   `temp` exists, replace `trim.file` with it (or, if `trim.file` is
//!   gone, remove it); then unlink whichever of `files` still exist. Without
//!   a trim: `Begun` → unlink each of `files`, fsync → `Replaced`;
//!   replaying `Begun` unlinks whichever still exist.
//!
//! Only one in-flight intent may name a given file: [`Journal::begin`]
//! refuses an intent that shares a (directory, name) pair with one in
//! flight, because the replay rules above read the files' state and two
//! intents on one file would confuse them.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::fs::safe_open::{DirLock, SafeOpenError, SafeRoot};

mod intent;
pub use intent::{Intent, IntentError, Phase, SpanTrim};

/// The directory of the records beneath the state root.
const DIR: &str = "intents";
/// The id reservation, in [`DIR`].
const IDS: &str = "ids.json";
/// How many ids one write of [`IDS`] reserves.
const ID_BLOCK: u64 = 1024;
/// A record larger than this is corrupt (real ones are a few hundred bytes).
const MAX_RECORD_BYTES: u64 = 64 * 1024;
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// What a durable write does with a file of the same name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Existing {
    Replace,
    /// The name must be new: an existing file is an error.
    Refuse,
}

/// The id of a journal entry: unique and increasing, across restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntryId(pub(crate) u64);

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a record was set aside.
#[derive(Debug, thiserror::Error)]
pub enum CorruptReason {
    #[error("cannot be read: {0}")]
    Unreadable(#[source] SafeOpenError),
    #[error("larger than {MAX_RECORD_BYTES} bytes")]
    TooLarge,
    #[error("torn or not a journal record (bad envelope)")]
    Envelope,
    #[error("checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("bad record: {0}")]
    Json(#[source] serde_json::Error),
    #[error("holds id {found}, but its name says {expected}")]
    IdMismatch { expected: EntryId, found: EntryId },
    #[error("bad intent: {0}")]
    Intent(#[source] IntentError),
    #[error("phase {phase:?} is not a phase of a {op} intent")]
    Phase { op: &'static str, phase: Phase },
    #[error("set aside at an earlier start-up")]
    Earlier,
}

/// An error of the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal: {0}")]
    Fs(#[from] SafeOpenError),
    #[error("journal directory {path} is locked by another podlogd")]
    Locked { path: PathBuf },
    #[error("write journal file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encode journal record {id}: {source}")]
    Encode {
        id: EntryId,
        #[source]
        source: serde_json::Error,
    },
    /// A record set aside at start-up; reported by [`Journal::corrupt`].
    #[error("journal record {} is corrupt ({reason}); {}", .path.display(), set_aside_note(.set_aside))]
    Corrupt {
        path: PathBuf,
        /// Where it now is; `None` when it could not be moved.
        set_aside: Option<PathBuf>,
        #[source]
        reason: CorruptReason,
    },
    #[error("intent {id}: {source}")]
    Intent {
        id: EntryId,
        #[source]
        source: IntentError,
    },
    #[error("intent {id} names {name:?} in the same directory as in-flight intent {other}")]
    Conflict {
        id: EntryId,
        other: EntryId,
        name: String,
    },
    #[error("no in-flight intent {id}")]
    Unknown { id: EntryId },
    #[error("intent {id} ({op}) cannot go from phase {from:?} to {to:?}")]
    BadPhase {
        id: EntryId,
        op: &'static str,
        from: Phase,
        to: Phase,
    },
}

fn set_aside_note(to: &Option<PathBuf>) -> String {
    match to {
        Some(p) => format!("set aside as {}", p.display()),
        None => "it could not be set aside and stays in place".to_owned(),
    }
}

/// The record as stored: a version-tagged enum, so a later layout can be
/// read next to this one.
#[derive(Serialize, Deserialize)]
#[serde(tag = "v")]
enum Record {
    #[serde(rename = "1")]
    V1 {
        id: EntryId,
        intent: Intent,
        phase: Phase,
    },
}

/// The id reservation: ids below `below` may have been used.
#[derive(Serialize, Deserialize)]
#[serde(tag = "v")]
enum Ids {
    #[serde(rename = "1")]
    V1 { below: u64 },
}

const HEAD: &[u8] = b"{\"crc32\":\"";
const MID: &[u8] = b"\",\"record\":";
const TAIL: &[u8] = b"}\n";

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// Wraps the JSON of `value` in the checksummed envelope.
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let body = serde_json::to_vec(value)?;
    let mut out = Vec::with_capacity(body.len() + 32);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(format!("{:08x}", crc32(&body)).as_bytes());
    out.extend_from_slice(MID);
    out.extend_from_slice(&body);
    out.extend_from_slice(TAIL);
    Ok(out)
}

/// Checks the envelope and the checksum, then parses the record.
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CorruptReason> {
    let rest = bytes.strip_prefix(HEAD).ok_or(CorruptReason::Envelope)?;
    let (hex, rest) = rest.split_at_checked(8).ok_or(CorruptReason::Envelope)?;
    let stored = std::str::from_utf8(hex)
        .ok()
        .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or(CorruptReason::Envelope)?;
    let body = rest
        .strip_prefix(MID)
        .and_then(|r| r.strip_suffix(TAIL))
        .ok_or(CorruptReason::Envelope)?;
    let computed = crc32(body);
    if computed != stored {
        return Err(CorruptReason::Checksum { stored, computed });
    }
    serde_json::from_slice(body).map_err(CorruptReason::Json)
}

/// An intent record as [`Journal::open`] reads one: its envelope, its
/// checksum, its JSON, its names and its phase checked.
///
/// # Errors
///
/// What makes it corrupt.
pub(crate) fn decode_record(bytes: &[u8]) -> Result<(EntryId, Intent, Phase), CorruptReason> {
    let Record::V1 { id, intent, phase } = decode(bytes)?;
    intent.validate().map_err(CorruptReason::Intent)?;
    if intent.rank(phase).is_none() {
        return Err(CorruptReason::Phase {
            op: intent.op(),
            phase,
        });
    }
    Ok((id, intent, phase))
}

/// What a name in `intents/` is.
#[derive(Debug, PartialEq, Eq)]
enum Name {
    Record(EntryId),
    /// A `*.tmp` file: a write cut short. The id, when it had one.
    Temp(Option<EntryId>),
    /// A `*.corrupt*` file set aside earlier.
    SetAside(Option<EntryId>),
    Ids,
    Other,
}

fn record_name(id: EntryId) -> String {
    format!("{:020}.json", id.0)
}

fn parse_id(stem: &str) -> Option<EntryId> {
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok().map(EntryId)
    } else {
        None
    }
}

fn classify(name: &str) -> Name {
    let id_of = |n: &str| n.strip_suffix(".json").and_then(parse_id);
    if name == IDS {
        Name::Ids
    } else if let Some(base) = name.strip_suffix(".tmp") {
        Name::Temp(id_of(base))
    } else if let Some((base, _)) = name.split_once(".corrupt") {
        Name::SetAside(id_of(base))
    } else if let Some(id) = id_of(name) {
        Name::Record(id)
    } else {
        Name::Other
    }
}

/// The intent journal. See the module documentation.
#[derive(Debug)]
pub struct Journal {
    root: Arc<SafeRoot>,
    _lock: DirLock,
    entries: BTreeMap<EntryId, (Intent, Phase)>,
    next: u64,
    /// Ids below this are durably reserved; `None` when `ids.json` does not
    /// exist (so the next write creates it rather than replacing it).
    reserved: Option<u64>,
    id_block: u64,
    corrupt: Vec<JournalError>,
}

// === impl Journal ===

impl Journal {
    /// Opens (creating if needed) the journal in `intents/` beneath the
    /// state root, takes its lock, removes leftover temporary files, loads
    /// the in-flight records and sets aside corrupt ones (see
    /// [`Journal::corrupt`]).
    ///
    /// # Errors
    ///
    /// `intents/` cannot be created, opened or listed, or another process
    /// holds it ([`JournalError::Locked`]). A bad record is not an error.
    pub fn open(root: Arc<SafeRoot>) -> Result<Journal, JournalError> {
        root.ensure_dir(&[DIR], DIR_MODE)?;
        let lock = root.lock_dir(&[DIR]).map_err(|e| {
            if e.is_locked() {
                JournalError::Locked {
                    path: root.path().join(DIR),
                }
            } else {
                e.into()
            }
        })?;
        let mut j = Journal {
            root,
            _lock: lock,
            entries: BTreeMap::new(),
            next: 1,
            reserved: None,
            id_block: ID_BLOCK,
            corrupt: Vec::new(),
        };
        let mut seen = 0;
        // `list_dir` leaves out symlinks and special files; nothing but this
        // code writes in `intents/`, which is the daemon's own 0700
        // directory.
        for (name, _) in j.root.list_dir(&[DIR])? {
            let path = j.root.path().join(DIR).join(&name);
            match classify(&name) {
                Name::Temp(id) => {
                    seen = seen.max(id.map_or(0, |i| i.0));
                    match j.root.unlink(&[DIR, &name]) {
                        Ok(()) => {
                            tracing::warn!(path = %path.display(), "removed a journal write cut short by a crash");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot remove a leftover journal temporary file; the next write of it retries");
                        }
                    }
                }
                Name::Record(id) => {
                    seen = seen.max(id.0);
                    match j.load(&name, id) {
                        Ok((intent, phase)) => {
                            j.entries.insert(id, (intent, phase));
                        }
                        Err(reason) => j.set_aside(&name, reason),
                    }
                }
                Name::SetAside(id) => {
                    seen = seen.max(id.map_or(0, |i| i.0));
                    tracing::error!(path = %path.display(), "a corrupt journal record set aside earlier is still there; its step may be unfinished");
                    j.corrupt.push(JournalError::Corrupt {
                        path: path.clone(),
                        set_aside: Some(path),
                        reason: CorruptReason::Earlier,
                    });
                }
                Name::Ids => match j.load_ids() {
                    Ok(below) => j.reserved = Some(below),
                    Err(reason) => j.set_aside(&name, reason),
                },
                Name::Other => {
                    tracing::warn!(path = %path.display(), "unknown file in the journal directory, left alone");
                }
            }
        }
        // Make the removals and renames above durable (cheap enough to do
        // at every start-up).
        j.root.fsync_dir(&[DIR])?;
        j.next = (seen + 1).max(j.reserved.unwrap_or(1));
        Ok(j)
    }

    /// Records `intent` in phase [`Phase::Begun`], durably, before any of
    /// its steps; returns its id.
    ///
    /// # Errors
    ///
    /// An invalid intent, one sharing a file with an in-flight intent
    /// ([`JournalError::Conflict`]), or a write failure. On a write failure
    /// the record may or may not be on disk: do not start the operation; a
    /// later start-up may list it as `Begun`, which replays as "maybe
    /// nothing was done".
    pub fn begin(&mut self, intent: Intent) -> Result<EntryId, JournalError> {
        let id = EntryId(self.next);
        intent
            .validate()
            .map_err(|source| JournalError::Intent { id, source })?;
        self.check_conflicts(id, &intent)?;
        if self.reserved.is_none_or(|below| id.0 >= below) {
            let below = id.0 + self.id_block;
            let bytes =
                encode(&Ids::V1 { below }).map_err(|source| JournalError::Encode { id, source })?;
            let existing = if self.reserved.is_some() {
                Existing::Replace
            } else {
                Existing::Refuse
            };
            self.write(IDS, &bytes, existing)?;
            self.reserved = Some(below);
        }
        // From here on the id is used, whatever happens to the record.
        self.next += 1;
        self.write_record(id, &intent, Phase::Begun, Existing::Refuse)?;
        self.entries.insert(id, (intent, Phase::Begun));
        Ok(id)
    }

    /// Records, durably, that the step reaching `phase` is done. `phase`
    /// must be a phase of the intent after its current one (skipping is
    /// allowed, e.g. when a replay finds two steps done); the current phase
    /// again is accepted and writes nothing.
    ///
    /// # Errors
    ///
    /// An unknown id, a phase that is not later in the intent's sequence,
    /// or a write failure (the record then holds the old phase or the new
    /// one; both are true, since the step is done).
    pub fn advance(&mut self, id: EntryId, phase: Phase) -> Result<(), JournalError> {
        let (intent, current) = self.entries.get(&id).ok_or(JournalError::Unknown { id })?;
        let bad = || JournalError::BadPhase {
            id,
            op: intent.op(),
            from: *current,
            to: phase,
        };
        let (from, to) = (intent.rank(*current), intent.rank(phase).ok_or_else(bad)?);
        if Some(to) == from {
            return Ok(());
        }
        if from.is_some_and(|f| to < f) {
            return Err(bad());
        }
        let intent = intent.clone();
        self.write_record(id, &intent, phase, Existing::Replace)?;
        self.entries.insert(id, (intent, phase));
        Ok(())
    }

    /// Removes the record of a finished (or rolled back) intent, durably.
    /// A record already gone counts as removed.
    ///
    /// # Errors
    ///
    /// An unknown id, or the removal failed (the record then stays, and a
    /// later start-up replays it: replays are idempotent).
    pub fn complete(&mut self, id: EntryId) -> Result<(), JournalError> {
        if !self.entries.contains_key(&id) {
            return Err(JournalError::Unknown { id });
        }
        match self.root.unlink(&[DIR, &record_name(id)]) {
            Err(e) if !e.is_not_found() => return Err(e.into()),
            _ => {}
        }
        self.root.fsync_dir(&[DIR])?;
        self.entries.remove(&id);
        Ok(())
    }

    /// The in-flight intents with their last durable phase, by id (the
    /// order they began in). At start-up, replay them in this order.
    pub fn pending(&self) -> Vec<(EntryId, Intent, Phase)> {
        self.entries
            .iter()
            .map(|(id, (intent, phase))| (*id, intent.clone(), *phase))
            .collect()
    }

    /// The records found corrupt at [`Journal::open`], each a
    /// [`JournalError::Corrupt`] naming the file, where it was set aside
    /// and why. Their steps may be unfinished: an operator has to look.
    /// They are reported again at each start-up until removed.
    pub fn corrupt(&self) -> &[JournalError] {
        &self.corrupt
    }

    fn check_conflicts(&self, id: EntryId, intent: &Intent) -> Result<(), JournalError> {
        let dir = intent.dir();
        for (other, (o, _)) in &self.entries {
            if o.dir() != dir {
                continue;
            }
            let theirs = o.names();
            if let Some(name) = intent.names().into_iter().find(|n| theirs.contains(n)) {
                return Err(JournalError::Conflict {
                    id,
                    other: *other,
                    name: name.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn write_record(
        &self,
        id: EntryId,
        intent: &Intent,
        phase: Phase,
        existing: Existing,
    ) -> Result<(), JournalError> {
        let record = Record::V1 {
            id,
            intent: intent.clone(),
            phase,
        };
        let bytes = encode(&record).map_err(|source| JournalError::Encode { id, source })?;
        self.write(&record_name(id), &bytes, existing)
    }

    /// Writes `name` durably: temporary file, fsync, rename (replacing an
    /// `existing` file or refusing to), fsync of `intents/`.
    fn write(&self, name: &str, bytes: &[u8], existing: Existing) -> Result<(), JournalError> {
        let temp = format!("{name}.tmp");
        let at = [DIR, temp.as_str()];
        // A temporary file left by an earlier failed write.
        match self.root.unlink(&at) {
            Err(e) if !e.is_not_found() => return Err(e.into()),
            _ => {}
        }
        let result = self.write_temp(&at, bytes).and_then(|()| {
            let to = [DIR, name];
            match existing {
                Existing::Replace => self.root.replace(&at, &to),
                Existing::Refuse => self.root.rename(&at, &to),
            }
            .map_err(JournalError::from)
        });
        if let Err(e) = result {
            // Best effort: a leftover is removed by the next write or open.
            let _ = self.root.unlink(&at);
            return Err(e);
        }
        self.root.fsync_dir(&[DIR])?;
        Ok(())
    }

    fn write_temp(&self, at: &[&str], bytes: &[u8]) -> Result<(), JournalError> {
        let mut f = self.root.create_new(at, FILE_MODE)?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|source| JournalError::Write {
                path: self.root.path().join(at.join("/")),
                source,
            })
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, CorruptReason> {
        let opened = self
            .root
            .open_file(&[DIR, name])
            .map_err(CorruptReason::Unreadable)?;
        if opened.size > MAX_RECORD_BYTES {
            return Err(CorruptReason::TooLarge);
        }
        let mut buf = Vec::new();
        opened
            .file
            .take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|source| {
                CorruptReason::Unreadable(SafeOpenError::Io {
                    op: "read",
                    path: self.root.path().join(DIR).join(name),
                    source,
                })
            })?;
        if buf.len() as u64 > MAX_RECORD_BYTES {
            return Err(CorruptReason::TooLarge);
        }
        Ok(buf)
    }

    fn load(&self, name: &str, id: EntryId) -> Result<(Intent, Phase), CorruptReason> {
        let (found, intent, phase) = decode_record(&self.read(name)?)?;
        if found != id {
            return Err(CorruptReason::IdMismatch {
                expected: id,
                found,
            });
        }
        Ok((intent, phase))
    }

    fn load_ids(&self) -> Result<u64, CorruptReason> {
        let Ids::V1 { below } = decode(&self.read(IDS)?)?;
        Ok(below)
    }

    /// Renames a bad record to `<name>.corrupt` (or `.corrupt.N` when that
    /// is taken), reports it and logs it.
    fn set_aside(&mut self, name: &str, reason: CorruptReason) {
        let dir = self.root.path().join(DIR);
        let mut moved = None;
        for n in 0..100 {
            let to = match n {
                0 => format!("{name}.corrupt"),
                n => format!("{name}.corrupt.{n}"),
            };
            match self.root.rename(&[DIR, name], &[DIR, &to]) {
                Ok(()) => {
                    moved = Some(dir.join(to));
                    break;
                }
                Err(e) if e.is_exists() => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot set the corrupt journal record aside");
                    break;
                }
            }
        }
        let e = JournalError::Corrupt {
            path: dir.join(name),
            set_aside: moved,
            reason,
        };
        tracing::error!(error = %e, "corrupt journal record; its step may be unfinished and needs an operator");
        self.corrupt.push(e);
    }
}

#[cfg(test)]
mod tests;
