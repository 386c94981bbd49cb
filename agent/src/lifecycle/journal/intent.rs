//! What the journal records: the [`Intent`] of a multi-step operation and
//! the [`Phase`] it reached, with the checks an intent passes before it is
//! recorded.

use serde::{Deserialize, Serialize};

use crate::fs::safe_open::{check_component, SafeOpenError};

/// A multi-step operation on files beneath the log root. `dir` is the
/// directory's components beneath the log root (e.g. `[pod_dir,
/// container]`); every other field is one file name in it. See the module
/// documentation for the steps and how to replay each phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Intent {
    /// Rename `active` (`0.log`) to `rotated` (`0.log.<UTC timestamp>`),
    /// then ask the runtime to reopen the log of `container_id`.
    Rotate {
        dir: Vec<String>,
        active: String,
        rotated: String,
        /// The CRI container id whose log is reopened; recorded so a replay
        /// reopens the container that was writing, not a later attempt.
        container_id: String,
    },
    /// Compress `source` into `temp`, rename `temp` to `target`, then
    /// delete `source`. `target` is `source` plus the codec's extension
    /// (`.gz` or `.zst`), which is how recovery knows the codec: the record
    /// has no codec field, so records written when podlog compressed with
    /// gzip only read as they did.
    Compress {
        dir: Vec<String>,
        source: String,
        temp: String,
        target: String,
    },
    /// Rewrite `file` without its first `offset` bytes (an event boundary)
    /// through `temp`, which then replaces `file`.
    Trim {
        dir: Vec<String>,
        file: String,
        /// Bytes dropped from the head of `file`.
        offset: u64,
        temp: String,
    },
    /// Delete `file`.
    Delete { dir: Vec<String>, file: String },
    /// Delete `files` and, with `trim`, rewrite the file after them without
    /// its head, as one step: an event spans them (see
    /// `podlog_policy::Action::DropSpan`).
    #[serde(rename = "drop")]
    DropSpan {
        dir: Vec<String>,
        /// Deleted, oldest first.
        files: Vec<String>,
        /// The head trim, if any; absent from the record when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trim: Option<SpanTrim>,
    },
}

/// The head trim of an [`Intent::DropSpan`]: `file` without its first
/// `offset` bytes (an event boundary), written to `temp`, which then
/// replaces it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanTrim {
    pub(crate) file: String,
    /// Bytes dropped from the head of `file`.
    pub(crate) offset: u64,
    pub(crate) temp: String,
}

/// The last step of an [`Intent`] known to be durably done. Which phases an
/// intent goes through, in order, is [`Intent::phases`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Recorded by [`Journal::begin`](super::Journal::begin): nothing is known to be done.
    Begun,
    /// Compress, Trim: `temp` is completely written and fsynced.
    TempWritten,
    /// Rotate: `active` was renamed to `rotated`. Compress: `temp` was
    /// renamed to `target`.
    Renamed,
    /// Rotate: the runtime reopened its log.
    Reopened,
    /// Compress: `source` was deleted.
    SourceDeleted,
    /// Trim: `temp` replaced `file`. DropSpan: the trim's `temp` replaced
    /// its file (if it has a trim) and `files` were deleted.
    Replaced,
}

/// An intent that cannot be recorded: it names a file it could not act on.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error("invalid name: {source}")]
    Name {
        #[source]
        source: SafeOpenError,
    },
    #[error("names {name:?} twice")]
    SameName { name: String },
    #[error("deletes no file")]
    NoFile,
    #[error("its directory has {0} components, not 2 (pod directory, container)")]
    Dir(usize),
}

// === impl Intent ===

impl Intent {
    /// The operation's name, as in the record's `op` field.
    pub(crate) fn op(&self) -> &'static str {
        match self {
            Intent::Rotate { .. } => "rotate",
            Intent::Compress { .. } => "compress",
            Intent::Trim { .. } => "trim",
            Intent::Delete { .. } => "delete",
            Intent::DropSpan { .. } => "drop",
        }
    }

    /// The phases this intent goes through, in order; the first is
    /// [`Phase::Begun`].
    pub(crate) fn phases(&self) -> &'static [Phase] {
        use Phase::*;
        match self {
            Intent::Rotate { .. } => &[Begun, Renamed, Reopened],
            Intent::Compress { .. } => &[Begun, TempWritten, Renamed, SourceDeleted],
            Intent::Trim { .. } => &[Begun, TempWritten, Replaced],
            Intent::Delete { .. } => &[Begun],
            Intent::DropSpan { trim: Some(_), .. } => &[Begun, TempWritten, Replaced],
            Intent::DropSpan { trim: None, .. } => &[Begun, Replaced],
        }
    }

    /// The directory's components beneath the log root, ready for
    /// [`SafeRoot`](crate::fs::safe_open::SafeRoot) calls.
    pub fn dir(&self) -> Vec<&str> {
        let dir = match self {
            Intent::Rotate { dir, .. }
            | Intent::Compress { dir, .. }
            | Intent::Trim { dir, .. }
            | Intent::Delete { dir, .. }
            | Intent::DropSpan { dir, .. } => dir,
        };
        dir.iter().map(String::as_str).collect()
    }

    /// The file names in [`Intent::dir`] this intent acts on.
    pub(crate) fn names(&self) -> Vec<&str> {
        match self {
            Intent::Rotate {
                active, rotated, ..
            } => vec![active, rotated],
            Intent::Compress {
                source,
                temp,
                target,
                ..
            } => vec![source, temp, target],
            Intent::Trim { file, temp, .. } => vec![file, temp],
            Intent::Delete { file, .. } => vec![file],
            Intent::DropSpan { files, trim, .. } => files
                .iter()
                .chain(trim.iter().flat_map(|t| [&t.file, &t.temp]))
                .map(String::as_str)
                .collect(),
        }
    }

    /// Checks that every component is a valid single name and that no file
    /// name repeats.
    ///
    /// # Errors
    ///
    /// The first bad component, a repeated name, or an
    /// [`Intent::DropSpan`] without a file to delete.
    pub(crate) fn validate(&self) -> Result<(), IntentError> {
        if matches!(self, Intent::DropSpan { files, .. } if files.is_empty()) {
            return Err(IntentError::NoFile);
        }
        if self.dir().len() != 2 {
            return Err(IntentError::Dir(self.dir().len()));
        }
        let names = self.names();
        for c in self.dir().into_iter().chain(names.iter().copied()) {
            check_component(c).map_err(|source| IntentError::Name { source })?;
        }
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return Err(IntentError::SameName {
                    name: (*n).to_owned(),
                });
            }
        }
        Ok(())
    }

    pub(super) fn rank(&self, phase: Phase) -> Option<usize> {
        self.phases().iter().position(|p| *p == phase)
    }
}
