//! Fault points: places in the executor's steps where a test kills the
//! process with `SIGKILL`, to prove that recovery finishes or rolls back
//! every step from whatever it left on disk.
//!
//! Set `PODLOG_FAULT` to one or more point names separated by commas (e.g.
//! `PODLOG_FAULT=compress:renamed`); the first armed point reached sends
//! the process `SIGKILL`: no destructors run, no buffer is flushed, nothing
//! is unwound, no handler runs, exactly as under `kill -9`. Every executor
//! reads the variable ([`FaultPoints::from_env`]), the one `podlogd` builds
//! for its lifecycle manager included, so the same points serve tests of
//! the executor alone and of the whole daemon. Only debug builds
//! (`debug_assertions`) have fault points: in a release build the variable
//! is ignored (with a warning) and [`FaultPoints`] checks nothing.
//!
//! Names are `<op>:<where>`. `<op>:<phase>` (e.g. `compress:renamed`) is
//! right after the journal durably recorded that phase, before the next
//! step; `<op>:after-<step>` (e.g. `rotate:after-rename`) is right after a
//! step is done on disk but before its phase is recorded, so the journal
//! lags the files; `<op>:partial-temp` is in the middle of writing a
//! temporary file, with part of it written. See [`Fault::ALL`].

use std::fmt;

/// The environment variable naming the armed fault points.
pub const ENV: &str = "PODLOG_FAULT";

/// The environment variable naming places that panic, once each, in a
/// debug build: `PODLOG_PANIC_ONCE=lifecycle-pass` makes the first
/// lifecycle pass panic while it holds the executor, so a test can show
/// that rotation and retention go on at the next tick.
pub const PANIC_ENV: &str = "PODLOG_PANIC_ONCE";

/// Panics the first time `point` is reached when [`PANIC_ENV`] names it
/// (debug builds only; a release build never panics here).
pub(crate) fn panic_once(point: &'static str) {
    #[cfg(debug_assertions)]
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::OnceLock;
        static ARMED: OnceLock<Vec<String>> = OnceLock::new();
        static FIRED: AtomicBool = AtomicBool::new(false);
        let armed = ARMED.get_or_init(|| {
            std::env::var(PANIC_ENV)
                .map(|v| v.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        });
        if armed.iter().any(|p| p == point) && !FIRED.swap(true, Ordering::SeqCst) {
            panic!("injected panic at {point} ({PANIC_ENV})");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// One fault point. See the module documentation for the naming.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    RotateBegun,
    RotateAfterRename,
    RotateAfterReopen,
    RotateReopened,
    CompressBegun,
    CompressPartialTemp,
    CompressAfterTemp,
    CompressTempWritten,
    CompressAfterRename,
    CompressRenamed,
    CompressAfterUnlink,
    CompressSourceDeleted,
    TrimBegun,
    TrimPartialTemp,
    TrimAfterTemp,
    TrimTempWritten,
    TrimAfterReplace,
    TrimReplaced,
    DeleteBegun,
    DeleteAfterUnlink,
    DropBegun,
    DropPartialTemp,
    DropAfterTemp,
    DropTempWritten,
    /// Between replacing the trimmed file and deleting the others: the one
    /// point where the files alone do not read as whole events (listings
    /// are held there, and recovery runs before podlogd serves).
    DropAfterReplace,
    DropAfterUnlink,
    DropReplaced,
}

// === impl Fault ===

impl Fault {
    /// Every fault point, in the order the steps reach them.
    pub const ALL: [Fault; 27] = [
        Fault::RotateBegun,
        Fault::RotateAfterRename,
        Fault::RotateAfterReopen,
        Fault::RotateReopened,
        Fault::CompressBegun,
        Fault::CompressPartialTemp,
        Fault::CompressAfterTemp,
        Fault::CompressTempWritten,
        Fault::CompressAfterRename,
        Fault::CompressRenamed,
        Fault::CompressAfterUnlink,
        Fault::CompressSourceDeleted,
        Fault::TrimBegun,
        Fault::TrimPartialTemp,
        Fault::TrimAfterTemp,
        Fault::TrimTempWritten,
        Fault::TrimAfterReplace,
        Fault::TrimReplaced,
        Fault::DeleteBegun,
        Fault::DeleteAfterUnlink,
        Fault::DropBegun,
        Fault::DropPartialTemp,
        Fault::DropAfterTemp,
        Fault::DropTempWritten,
        Fault::DropAfterReplace,
        Fault::DropAfterUnlink,
        Fault::DropReplaced,
    ];

    /// The point's name, as written in `PODLOG_FAULT`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::RotateBegun => "rotate:begun",
            Fault::RotateAfterRename => "rotate:after-rename",
            Fault::RotateAfterReopen => "rotate:after-reopen",
            Fault::RotateReopened => "rotate:reopened",
            Fault::CompressBegun => "compress:begun",
            Fault::CompressPartialTemp => "compress:partial-temp",
            Fault::CompressAfterTemp => "compress:after-temp",
            Fault::CompressTempWritten => "compress:temp-written",
            Fault::CompressAfterRename => "compress:after-rename",
            Fault::CompressRenamed => "compress:renamed",
            Fault::CompressAfterUnlink => "compress:after-unlink",
            Fault::CompressSourceDeleted => "compress:source-deleted",
            Fault::TrimBegun => "trim:begun",
            Fault::TrimPartialTemp => "trim:partial-temp",
            Fault::TrimAfterTemp => "trim:after-temp",
            Fault::TrimTempWritten => "trim:temp-written",
            Fault::TrimAfterReplace => "trim:after-replace",
            Fault::TrimReplaced => "trim:replaced",
            Fault::DeleteBegun => "delete:begun",
            Fault::DeleteAfterUnlink => "delete:after-unlink",
            Fault::DropBegun => "drop:begun",
            Fault::DropPartialTemp => "drop:partial-temp",
            Fault::DropAfterTemp => "drop:after-temp",
            Fault::DropTempWritten => "drop:temp-written",
            Fault::DropAfterReplace => "drop:after-replace",
            Fault::DropAfterUnlink => "drop:after-unlink",
            Fault::DropReplaced => "drop:replaced",
        }
    }

    /// The point named `name` (only a debug build arms points by name).
    #[cfg(any(debug_assertions, test))]
    pub(crate) fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `PODLOG_FAULT` entry that names no fault point.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault point {name:?} in {ENV}")]
pub(crate) struct UnknownFault {
    pub(crate) name: String,
}

/// The armed fault points; none by default, and always none in a release
/// build.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPoints {
    #[cfg(debug_assertions)]
    armed: Vec<Fault>,
}

// === impl FaultPoints ===

impl FaultPoints {
    /// No fault point armed.
    pub fn none() -> Self {
        Self::default()
    }

    /// The points named in `PODLOG_FAULT`. An unknown name is logged and
    /// skipped. In a release build: none, whatever the variable says.
    pub(crate) fn from_env() -> Self {
        let Ok(value) = std::env::var(ENV) else {
            return Self::none();
        };
        match Self::parse(&value) {
            Ok(points) => points,
            Err(e) => {
                tracing::warn!(error = %e, "fault points ignored");
                Self::none()
            }
        }
    }

    /// Parses a comma-separated list of point names (empty entries are
    /// skipped).
    ///
    /// # Errors
    ///
    /// The first name that is no fault point. A release build has no fault
    /// points and refuses any name.
    pub(crate) fn parse(value: &str) -> Result<Self, UnknownFault> {
        #[cfg(debug_assertions)]
        {
            let mut armed = Vec::new();
            for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let f = Fault::from_name(name).ok_or_else(|| UnknownFault {
                    name: name.to_owned(),
                })?;
                armed.push(f);
            }
            Ok(Self { armed })
        }
        #[cfg(not(debug_assertions))]
        {
            match value.split(',').map(str::trim).find(|n| !n.is_empty()) {
                Some(name) => Err(UnknownFault {
                    name: format!("{name} (a release build has no fault points)"),
                }),
                None => Ok(Self::none()),
            }
        }
    }

    /// Whether `point` is armed.
    pub(crate) fn is_armed(&self, point: Fault) -> bool {
        #[cfg(debug_assertions)]
        {
            self.armed.contains(&point)
        }
        #[cfg(not(debug_assertions))]
        {
            let _ = point;
            false
        }
    }

    /// Kills the process with `SIGKILL` if `point` is armed.
    pub(crate) fn hit(&self, point: Fault) {
        #[cfg(debug_assertions)]
        if self.is_armed(point) {
            // stderr is unbuffered: this line is out before the kill.
            eprintln!("podlog: fault point {point} reached: killing the process with SIGKILL");
            // SIGKILL cannot be caught, blocked or ignored, and a signal a
            // thread sends itself is delivered before `raise` returns: the
            // whole process ends here.
            let r = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            // Unreachable; should the signal somehow not be sent, still die
            // without unwinding.
            eprintln!("podlog: fault point {point}: SIGKILL not delivered ({r:?}): aborting");
            std::process::abort();
        }
        #[cfg(not(debug_assertions))]
        let _ = point;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for f in Fault::ALL {
            assert_eq!(Fault::from_name(f.name()), Some(f));
        }
        let mut names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Fault::ALL.len());
    }

    #[cfg(debug_assertions)]
    #[test]
    fn parses_lists_and_refuses_unknown_names() {
        let p = FaultPoints::parse(" rotate:after-rename,,trim:replaced ").unwrap();
        assert!(p.is_armed(Fault::RotateAfterRename));
        assert!(p.is_armed(Fault::TrimReplaced));
        assert!(!p.is_armed(Fault::RotateBegun));
        assert_eq!(FaultPoints::parse("").unwrap(), FaultPoints::none());
        assert_eq!(
            FaultPoints::parse("rotate:after-rename,rotate:nope").unwrap_err(),
            UnknownFault {
                name: "rotate:nope".into()
            }
        );
        // Not armed: passing the point does nothing.
        FaultPoints::none().hit(Fault::RotateAfterRename);
    }
}
