//! The one way the daemon opens anything under its log root.
//!
//! Containers influence the names in the pod log tree, and podlogd runs
//! privileged, so a planted symlink must never lead it to a host file. Every
//! open resolves a validated relative path beneath a directory descriptor of
//! the root with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`; where the
//! kernel lacks `openat2` (before 5.6) it walks the path one component at a
//! time with `O_NOFOLLOW`. The result is checked with `fstat` to be of the
//! expected type. Nothing here follows a symlink, at any depth.
//!
//! Writes (rename, unlink, create, open for writing, mkdir, fsync) open the
//! parent directory with that same walk, then act with an `*at` syscall on
//! one validated name relative to that directory descriptor, with
//! `AT_SYMLINK_NOFOLLOW` / `O_NOFOLLOW` semantics: a symlink planted as the
//! last component is refused, never followed. What each write does with the
//! file system is left to its callers (`journal`, the lifecycle manager).
//! A caller whose change takes several writes can hold listings off
//! meanwhile ([`SafeRoot::hold_listings`]), so readers see it whole.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockWriteGuard};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::{self, FileStat, Mode, SFlag};

/// What a path resolves to, as checked with `fstat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
}

/// An error of the safe-open layer, naming the operation and the path.
#[derive(Debug, thiserror::Error)]
pub enum SafeOpenError {
    #[error("invalid path component {component:?}")]
    InvalidComponent { component: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path} is not a {want:?}")]
    WrongKind { path: PathBuf, want: Kind },
    #[error("{path} has {links} hard links; log files have one, so it is refused")]
    HardLinked { path: PathBuf, links: u64 },
    #[error("rename {from} to {to}: {source}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SafeOpenError {
    /// True when the path does not exist (or a component is not a
    /// directory), as opposed to being refused or failing.
    pub(crate) fn is_not_found(&self) -> bool {
        let missing = [Errno::ENOENT as i32, Errno::ENOTDIR as i32];
        self.errno().is_some_and(|e| missing.contains(&e))
    }

    /// True when the target name already exists: [`SafeRoot::rename`]
    /// refused to replace it, or [`SafeRoot::create_new`] found it taken.
    pub(crate) fn is_exists(&self) -> bool {
        self.errno() == Some(Errno::EEXIST as i32)
    }

    /// True when [`SafeRoot::lock_dir`] found the directory locked by
    /// another open file description (another process, or another lock
    /// taken in this one).
    pub(crate) fn is_locked(&self) -> bool {
        self.errno() == Some(Errno::EWOULDBLOCK as i32)
    }

    fn errno(&self) -> Option<i32> {
        match self {
            SafeOpenError::Io { source, .. } | SafeOpenError::Rename { source, .. } => {
                source.raw_os_error()
            }
            _ => None,
        }
    }
}

/// Checks one path component: non-empty, not `.` or `..`, no `/` or NUL.
///
/// # Errors
///
/// [`SafeOpenError::InvalidComponent`] naming the component.
pub(crate) fn check_component(c: &str) -> Result<(), SafeOpenError> {
    if c.is_empty() || c == "." || c == ".." || c.contains('/') || c.contains('\0') {
        return Err(SafeOpenError::InvalidComponent {
            component: c.to_owned(),
        });
    }
    Ok(())
}

/// A directory beneath which all opens happen.
#[derive(Debug)]
pub struct SafeRoot {
    fd: OwnedFd,
    path: PathBuf,
    openat2: bool,
    /// Taken shared by every listing, exclusively by
    /// [`SafeRoot::hold_listings`].
    listings: RwLock<()>,
}

/// Holds every listing of a [`SafeRoot`] off until dropped; see
/// [`SafeRoot::hold_listings`].
#[derive(Debug)]
pub(crate) struct ListingsHeld<'a> {
    _guard: RwLockWriteGuard<'a, ()>,
}

/// The identity of an opened file: device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

/// What an entry is, from `lstat` (see [`SafeRoot::entry`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub(crate) regular: bool,
    /// `file`, `directory`, `symlink`, `fifo`, `socket`, `device`.
    pub(crate) kind: &'static str,
    pub(crate) key: FileKey,
    pub(crate) links: u64,
    pub(crate) size: u64,
    /// Permission bits, owner and group.
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

fn entry_kind(st: &FileStat) -> &'static str {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => "file",
        libc::S_IFDIR => "directory",
        libc::S_IFLNK => "symlink",
        libc::S_IFIFO => "fifo",
        libc::S_IFSOCK => "socket",
        _ => "device",
    }
}

/// An opened regular file with the facts `fstat` gave at open time.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub key: FileKey,
    pub(crate) size: u64,
}

/// How many hard links a file may have for a step to act on it: renaming
/// or truncating a file with a second name would change it under that name
/// too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Links {
    One,
    Any,
}

fn io_err(op: &'static str, path: &Path, e: Errno) -> SafeOpenError {
    SafeOpenError::Io {
        op,
        path: path.to_owned(),
        source: io::Error::from_raw_os_error(e as i32),
    }
}

fn kind_of(st: &FileStat) -> Option<Kind> {
    let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    if fmt == SFlag::S_IFREG {
        Some(Kind::File)
    } else if fmt == SFlag::S_IFDIR {
        Some(Kind::Dir)
    } else {
        None
    }
}

// === impl SafeRoot ===

impl SafeRoot {
    /// Opens the root directory itself. The root path is the operator's
    /// configuration and may contain symlinks (e.g. `/var/log` on a
    /// separate volume); nothing beneath it may.
    ///
    /// # Errors
    ///
    /// When the root cannot be opened as a directory.
    pub fn open(path: &Path) -> Result<Self, SafeOpenError> {
        let fd = fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("open log root", path, e))?;
        let openat2 = probe_openat2(&fd);
        Ok(Self {
            fd,
            path: path.to_owned(),
            openat2,
            listings: RwLock::new(()),
        })
    }

    /// Holds every listing of this root ([`SafeRoot::list_dir`], from any
    /// thread) off until the returned guard is dropped, so that the changes
    /// made meanwhile reach listings all at once.
    ///
    /// This is how a change that takes several calls (a file replaced and
    /// others removed, which no single `rename` can do) stays invisible
    /// half-done to a reader that lists a directory, opens what it listed,
    /// then lists again and starts over when the two listings differ: its
    /// listings fall both before the change or both after it, or they
    /// differ, provided the change adds or removes a name. Opens are not
    /// held off, so such a reader never waits for the change. Keep the
    /// section short (no fsync), and list nothing in it: the lock is not
    /// reentrant, so a listing by the holder's thread would wait forever.
    pub(crate) fn hold_listings(&self) -> ListingsHeld<'_> {
        ListingsHeld {
            // `()` cannot be left inconsistent by a panic.
            _guard: self
                .listings
                .write()
                .unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// The root's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `openat2` is in use (else the `O_NOFOLLOW` walk).
    pub(crate) fn uses_openat2(&self) -> bool {
        self.openat2
    }

    fn display(&self, rel: &[&str]) -> PathBuf {
        let mut p = self.path.clone();
        for c in rel {
            p.push(c);
        }
        p
    }

    fn open_raw(&self, rel: &[&str], flags: OFlag) -> Result<OwnedFd, SafeOpenError> {
        for c in rel {
            check_component(c)?;
        }
        let shown = self.display(rel);
        let mut flags = flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        if !flags.contains(OFlag::O_PATH) {
            // openat2 refuses it beside O_PATH (which opens no terminal).
            flags |= OFlag::O_NOCTTY;
        }
        if rel.is_empty() {
            return fcntl::openat(&self.fd, ".", flags | OFlag::O_DIRECTORY, Mode::empty())
                .map_err(|e| io_err("open", &shown, e));
        }
        if self.openat2 {
            let joined = rel.join("/");
            let how = fcntl::OpenHow::new().flags(flags).resolve(
                fcntl::ResolveFlag::RESOLVE_BENEATH | fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS,
            );
            return fcntl::openat2(&self.fd, OsStr::from_bytes(joined.as_bytes()), how)
                .map_err(|e| io_err("open", &shown, e));
        }
        // Fallback: one component at a time, never following a symlink.
        let mut dir: Option<OwnedFd> = None;
        for (i, c) in rel.iter().enumerate() {
            let last = i + 1 == rel.len();
            let f = if last {
                flags
            } else {
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW
            };
            let parent = dir.as_ref().map_or(self.fd.as_fd(), |d| d.as_fd());
            let next = fcntl::openat(parent, OsStr::from_bytes(c.as_bytes()), f, Mode::empty())
                .map_err(|e| io_err("open", &shown, e))?;
            dir = Some(next);
        }
        Ok(dir.expect("rel is not empty, so the walk opened at least one component"))
    }

    /// Opens a regular file read-only beneath the root.
    ///
    /// # Errors
    ///
    /// Invalid components, a symlink anywhere on the path, a missing file,
    /// or something other than a regular file.
    pub fn open_file(&self, rel: &[&str]) -> Result<Opened, SafeOpenError> {
        // A hard link planted in the tree would bypass the symlink checks
        // (it is the host file itself); runtimes and rotation never make one.
        self.open_checked(rel, OFlag::O_RDONLY, Links::One)
    }

    /// Opens `rel` for `access` once it is known to be a regular file
    /// (with one link, for [`Links::One`]): the name is opened with
    /// `O_PATH` (which opens nothing for I/O: a FIFO's writer sees no
    /// reader, a device's driver is not called), checked with `fstat`, and
    /// that inode then opened through `/proc/self/fd`. Without `/proc`,
    /// the name is opened with `O_NONBLOCK` and checked after.
    fn open_checked(
        &self,
        rel: &[&str],
        access: OFlag,
        links: Links,
    ) -> Result<Opened, SafeOpenError> {
        let shown = || self.display(rel);
        let path = self.open_raw(rel, OFlag::O_PATH)?;
        let st = stat::fstat(&path).map_err(|e| io_err("fstat", &shown(), e))?;
        self.check_file(&st, rel, links)?;
        let proc = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&path));
        let fd = match fcntl::open(
            proc.as_str(),
            access | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => self.open_raw(rel, access | OFlag::O_NONBLOCK)?,
            Err(e) => return Err(io_err("open", &shown(), e)),
        };
        let now = stat::fstat(&fd).map_err(|e| io_err("fstat", &shown(), e))?;
        // The same inode (it is, through /proc; the fallback re-checks).
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
            self.check_file(&now, rel, links)?;
        }
        Ok(Opened {
            file: File::from(fd),
            key: FileKey {
                dev: now.st_dev,
                ino: now.st_ino,
            },
            size: now.st_size.max(0) as u64,
        })
    }

    /// Lists a directory beneath the root: `(name, kind)` for regular files
    /// and directories; symlinks and other types are left out. A listing
    /// waits while a change is held ([`SafeRoot::hold_listings`]).
    ///
    /// # Errors
    ///
    /// As [`SafeRoot::open_file`], for the directory.
    pub fn list_dir(&self, rel: &[&str]) -> Result<Vec<(String, Kind)>, SafeOpenError> {
        // Not inside a change made under `hold_listings`.
        let _held = self.listings.read().unwrap_or_else(PoisonError::into_inner);
        let fd = self.open_raw(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let shown = self.display(rel);
        let mut d = nix::dir::Dir::from_fd(fd).map_err(|e| io_err("opendir", &shown, e))?;
        let dfd = d
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| SafeOpenError::Io {
                op: "dup",
                path: shown.clone(),
                source: e,
            })?;
        let mut out = Vec::new();
        for entry in d.iter() {
            let entry = entry.map_err(|e| io_err("readdir", &shown, e))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            // d_type can be DT_UNKNOWN on some filesystems: ask lstat then.
            let kind = match entry.file_type() {
                Some(nix::dir::Type::File) => Some(Kind::File),
                Some(nix::dir::Type::Directory) => Some(Kind::Dir),
                Some(_) => None,
                None => stat::fstatat(&dfd, name, fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                    .ok()
                    .and_then(|st| kind_of(&st)),
            };
            if let Some(k) = kind {
                out.push((name.to_owned(), k));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Permission bits a created file or directory may carry: never set-id or
/// sticky bits, whatever the caller passes.
const PERMISSION_BITS: u32 = 0o777;

/// An exclusive `flock(2)` on a directory beneath a [`SafeRoot`], released
/// when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _lock: fcntl::Flock<OwnedFd>,
}

// === impl SafeRoot: writes ===

impl SafeRoot {
    /// Validates every component of `rel`, opens the directory holding its
    /// last component with the same walk as every open, and returns that
    /// directory with the last name. The caller acts on `(dir, name)` with
    /// an `*at` syscall that does not follow a symlink named `name`.
    fn parent<'a>(&self, rel: &[&'a str]) -> Result<(OwnedFd, &'a str), SafeOpenError> {
        for c in rel {
            check_component(c)?;
        }
        let Some((name, dir)) = rel.split_last() else {
            return Err(SafeOpenError::InvalidComponent {
                component: String::new(),
            });
        };
        let fd = self.open_raw(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        Ok((fd, name))
    }

    /// `lstat` of one entry: the entry itself, never a symlink's target.
    fn lstat_at(&self, dir: &OwnedFd, name: &str, rel: &[&str]) -> Result<FileStat, SafeOpenError> {
        stat::fstatat(dir, name, fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| io_err("stat", &self.display(rel), e))
    }

    /// Refuses anything but a regular file and, with [`Links::One`], a file
    /// with more than one hard link.
    fn check_file(&self, st: &FileStat, rel: &[&str], links: Links) -> Result<(), SafeOpenError> {
        if kind_of(st) != Some(Kind::File) {
            return Err(SafeOpenError::WrongKind {
                path: self.display(rel),
                want: Kind::File,
            });
        }
        if links == Links::One && st.st_nlink > 1 {
            return Err(SafeOpenError::HardLinked {
                path: self.display(rel),
                links: st.st_nlink,
            });
        }
        Ok(())
    }

    fn rename_err(&self, from: &[&str], to: &[&str], e: Errno) -> SafeOpenError {
        SafeOpenError::Rename {
            from: self.display(from),
            to: self.display(to),
            source: io::Error::from_raw_os_error(e as i32),
        }
    }

    /// Renames the regular file `from` to `to`, in the same directory or
    /// across directories beneath the root, and refuses to replace anything
    /// already at `to` (`renameat2(RENAME_NOREPLACE)`): the error then
    /// answers [`SafeOpenError::is_exists`]. This is the rotation rename and
    /// the compression rename: neither may ever overwrite a log file.
    ///
    /// `from` must be a regular file with one link. `to` is never followed:
    /// a symlink there exists, so the rename is refused.
    ///
    /// There is no `link` + `unlink` fallback: a crash between the two
    /// would leave a file with two links, which [`SafeRoot::open_file`]
    /// rightly refuses to serve. `renameat2` exists since Linux 3.15 and
    /// ext4, xfs, btrfs, tmpfs and overlayfs support `RENAME_NOREPLACE`;
    /// elsewhere the call fails with `ENOSYS` or `EINVAL` (and on non-glibc
    /// targets, where nix does not expose `renameat2`, always with
    /// `ENOSYS`).
    ///
    /// # Errors
    ///
    /// Invalid components, a symlink on either directory path, a missing
    /// source, a source that is not a regular file or is hard-linked, an
    /// existing target ([`SafeOpenError::is_exists`]), or the kernel's
    /// refusal (`EXDEV` across file systems).
    pub fn rename(&self, from: &[&str], to: &[&str]) -> Result<(), SafeOpenError> {
        let (from_dir, from_name) = self.parent(from)?;
        let (to_dir, to_name) = self.parent(to)?;
        let st = self.lstat_at(&from_dir, from_name, from)?;
        self.check_file(&st, from, Links::One)?;
        rename_noreplace(&from_dir, from_name, &to_dir, to_name)
            .map_err(|e| self.rename_err(from, to, e))
    }

    /// Renames the regular file `from` over the existing regular file `to`,
    /// replacing it atomically (plain `renameat`). This is for rewriting a
    /// file in place, as trimming does: write the new content to a temporary
    /// file, fsync it, then replace the original, so that a reader sees
    /// either the whole old file or the whole new one. `RENAME_NOREPLACE`
    /// cannot do that, and `RENAME_EXCHANGE` would leave the old content
    /// under the temporary name, where a crash makes it ambiguous.
    ///
    /// Both entries are checked with `lstat` first: `from` must be a regular
    /// file with one link; `to` must exist and be a regular file (a symlink
    /// or a directory there is refused; a hard-linked `to` is accepted,
    /// since replacing a name never changes the inode behind it). The checks
    /// and the rename are two syscalls: if `to` is swapped in between, the
    /// rename still only replaces the directory entry, never a symlink's
    /// target or a file's content.
    ///
    /// # Errors
    ///
    /// As [`SafeRoot::rename`], and a missing or non-regular `to`.
    pub fn replace(&self, from: &[&str], to: &[&str]) -> Result<(), SafeOpenError> {
        let (from_dir, from_name) = self.parent(from)?;
        let (to_dir, to_name) = self.parent(to)?;
        let st = self.lstat_at(&from_dir, from_name, from)?;
        self.check_file(&st, from, Links::One)?;
        let st = self.lstat_at(&to_dir, to_name, to)?;
        self.check_file(&st, to, Links::Any)?;
        fcntl::renameat(&from_dir, from_name, &to_dir, to_name)
            .map_err(|e| self.rename_err(from, to, e))
    }

    /// Removes the regular file `rel`.
    ///
    /// The entry is checked with `lstat` first: directories, symlinks,
    /// FIFOs and other special files are refused (a symlink is refused
    /// rather than removed, although removing it would not touch its
    /// target, because nothing podlog deletes is ever a symlink, so finding
    /// one means the plan is stale). A hard-linked file is removed: that
    /// removes this name only, and leaves the other names and the content
    /// alone. The check and the `unlinkat` are two syscalls; if the entry is
    /// swapped in between, `unlinkat` without `AT_REMOVEDIR` still never
    /// removes a directory and never follows a symlink.
    ///
    /// # Errors
    ///
    /// Invalid components, a symlink on the directory path, a missing entry
    /// ([`SafeOpenError::is_not_found`]), or one that is not a regular file.
    pub fn unlink(&self, rel: &[&str]) -> Result<(), SafeOpenError> {
        let (dir, name) = self.parent(rel)?;
        let st = self.lstat_at(&dir, name, rel)?;
        self.check_file(&st, rel, Links::Any)?;
        nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
            .map_err(|e| io_err("unlink", &self.display(rel), e))
    }

    /// What the entry `rel` is, never followed (`lstat`): to check that a
    /// name is still the file podlogd made.
    ///
    /// # Errors
    ///
    /// Invalid components, a symlink on the directory path, a missing
    /// entry ([`SafeOpenError::is_not_found`]).
    pub fn entry(&self, rel: &[&str]) -> Result<Entry, SafeOpenError> {
        let (dir, name) = self.parent(rel)?;
        let st = self.lstat_at(&dir, name, rel)?;
        Ok(Entry {
            regular: kind_of(&st) == Some(Kind::File),
            kind: entry_kind(&st),
            key: FileKey {
                dev: st.st_dev,
                ino: st.st_ino,
            },
            links: st.st_nlink,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mode: st.st_mode & 0o777,
            uid: st.st_uid,
            gid: st.st_gid,
        })
    }

    /// Where the symlink `rel` points, as it is written (never followed):
    /// for reports.
    ///
    /// # Errors
    ///
    /// Invalid components, a symlink on the directory path, a missing
    /// entry, or one that is not a symlink.
    pub fn link_target(&self, rel: &[&str]) -> Result<std::ffi::OsString, SafeOpenError> {
        let (dir, name) = self.parent(rel)?;
        fcntl::readlinkat(&dir, name).map_err(|e| io_err("readlink", &self.display(rel), e))
    }

    /// Removes the entry `rel` that is not a directory, whatever it is
    /// (a symlink, a FIFO, a socket, a device node or a file), never
    /// following it: `unlinkat` without `AT_REMOVEDIR` removes the name
    /// only. For taking a name back from something planted under it.
    ///
    /// # Errors
    ///
    /// Invalid components, a symlink on the directory path, a missing
    /// entry, a directory.
    pub fn unlink_entry(&self, rel: &[&str]) -> Result<(), SafeOpenError> {
        let (dir, name) = self.parent(rel)?;
        nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
            .map_err(|e| io_err("unlink", &self.display(rel), e))
    }

    /// Creates the new regular file `rel`, open for writing, with
    /// `O_CREAT | O_EXCL | O_NOFOLLOW`: an existing entry of any kind,
    /// including a dangling symlink, is refused. `mode` holds permission
    /// bits (e.g. `0o600`; set-id and sticky bits are dropped) and is
    /// reduced by the process umask. The caller fsyncs the file and, for a
    /// durable name, the directory ([`SafeRoot::fsync_dir`]).
    ///
    /// # Errors
    ///
    /// Invalid components, a symlink on the directory path, a missing
    /// directory, or an existing entry ([`SafeOpenError::is_exists`]).
    pub fn create_new(&self, rel: &[&str], mode: u32) -> Result<File, SafeOpenError> {
        let (dir, name) = self.parent(rel)?;
        let flags = OFlag::O_WRONLY
            | OFlag::O_CREAT
            | OFlag::O_EXCL
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NOCTTY;
        let mode = Mode::from_bits_truncate(mode & PERMISSION_BITS);
        let fd = fcntl::openat(&dir, name, flags, mode)
            .map_err(|e| io_err("create", &self.display(rel), e))?;
        Ok(File::from(fd))
    }

    /// Opens the existing regular file `rel` for writing, to truncate or
    /// rewrite it; nothing is truncated here. The file must be a regular
    /// file with one link, as for [`SafeRoot::open_file`], checked before
    /// it is opened for writing (a FIFO or device planted under the name
    /// is never opened for I/O).
    ///
    /// # Errors
    ///
    /// As [`SafeRoot::open_file`].
    pub fn open_write(&self, rel: &[&str]) -> Result<Opened, SafeOpenError> {
        self.open_checked(rel, OFlag::O_WRONLY, Links::One)
    }

    /// Fsyncs the directory `rel` (the root itself when empty), which makes
    /// the renames, creations and removals of names in it durable.
    ///
    /// # Errors
    ///
    /// As [`SafeRoot::list_dir`], and the `fsync` error.
    pub fn fsync_dir(&self, rel: &[&str]) -> Result<(), SafeOpenError> {
        let fd = self.open_raw(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        nix::unistd::fsync(&fd).map_err(|e| io_err("fsync", &self.display(rel), e))
    }

    /// Creates the directory `rel` and any missing parent, like
    /// `mkdir -p`, one component at a time with `mkdirat`, opening each
    /// with `O_NOFOLLOW | O_DIRECTORY`: an existing component that is a
    /// symlink or not a directory is refused, never followed. `mode` holds
    /// permission bits (e.g. `0o700`) for the directories created, reduced
    /// by the umask; existing directories keep theirs. Each parent is
    /// fsynced after a creation, so the new directory is durable.
    ///
    /// # Errors
    ///
    /// Invalid components, a component that is a symlink or not a
    /// directory ([`SafeOpenError::WrongKind`]), or the kernel's refusal.
    pub fn ensure_dir(&self, rel: &[&str], mode: u32) -> Result<(), SafeOpenError> {
        for c in rel {
            check_component(c)?;
        }
        let mode = Mode::from_bits_truncate(mode & PERMISSION_BITS);
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut dir = self.open_raw(&[], OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        for (i, c) in rel.iter().enumerate() {
            let here = &rel[..=i];
            let next = match fcntl::openat(&dir, *c, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match stat::mkdirat(&dir, *c, mode) {
                        // EEXIST: another creator won the race; the open
                        // below checks what it made.
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(io_err("mkdir", &self.display(here), e)),
                    }
                    nix::unistd::fsync(&dir)
                        .map_err(|e| io_err("fsync", &self.display(&rel[..i]), e))?;
                    fcntl::openat(&dir, *c, flags, Mode::empty())
                        .map_err(|e| self.not_a_dir(&dir, c, here, e))?
                }
                Err(e) => return Err(self.not_a_dir(&dir, c, here, e)),
            };
            dir = next;
        }
        Ok(())
    }

    /// `O_NOFOLLOW | O_DIRECTORY` fails with `ELOOP` or `ENOTDIR` both on a
    /// symlink and on a file; say which plainly when it is one of those.
    fn not_a_dir(&self, dir: &OwnedFd, name: &str, rel: &[&str], e: Errno) -> SafeOpenError {
        match stat::fstatat(dir, name, fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if kind_of(&st) != Some(Kind::Dir) => SafeOpenError::WrongKind {
                path: self.display(rel),
                want: Kind::Dir,
            },
            _ => io_err("open", &self.display(rel), e),
        }
    }

    /// Takes an exclusive, non-blocking `flock` on the directory `rel` (the
    /// root itself when empty), held until the [`DirLock`] is dropped. It
    /// keeps two daemons from sharing one state directory.
    ///
    /// # Errors
    ///
    /// As [`SafeRoot::list_dir`], and [`SafeOpenError::is_locked`] when the
    /// lock is held elsewhere.
    pub(crate) fn lock_dir(&self, rel: &[&str]) -> Result<DirLock, SafeOpenError> {
        let fd = self.open_raw(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        let lock = fcntl::Flock::lock(fd, fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| io_err("lock", &self.display(rel), e))?;
        Ok(DirLock { _lock: lock })
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn rename_noreplace(from_dir: &OwnedFd, from: &str, to_dir: &OwnedFd, to: &str) -> nix::Result<()> {
    fcntl::renameat2(
        from_dir,
        from,
        to_dir,
        to,
        fcntl::RenameFlags::RENAME_NOREPLACE,
    )
}

/// nix exposes `renameat2` on glibc targets only; see [`SafeRoot::rename`].
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn rename_noreplace(_: &OwnedFd, _: &str, _: &OwnedFd, _: &str) -> nix::Result<()> {
    Err(Errno::ENOSYS)
}

/// `openat2` exists since Linux 5.6; seccomp profiles may also refuse it.
fn probe_openat2(root: &OwnedFd) -> bool {
    let how = fcntl::OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(fcntl::ResolveFlag::RESOLVE_BENEATH | fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS);
    fcntl::openat2(root, ".", how).is_ok()
}

/// Makes `SIGIO`, which the kernel sends when a lease taken by
/// [`has_writer`] is broken, ignored for the whole process (unless a
/// handler is installed). Call once at start-up, before any file is read;
/// later calls do nothing.
pub fn ignore_lease_breaks() {
    static IGNORE_SIGIO: std::sync::Once = std::sync::Once::new();
    IGNORE_SIGIO.call_once(|| {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: installs no handler code; a handler that was installed
        // is put back as it was.
        if let Ok(old) = unsafe { sigaction(Signal::SIGIO, &ignore) } {
            if !matches!(old.handler(), SigHandler::SigDfl | SigHandler::SigIgn) {
                // SAFETY: as above.
                let _ = unsafe { sigaction(Signal::SIGIO, &old) };
            }
        }
    });
}

/// Whether some process holds `file` open for writing: `Some(true)` while
/// a container runtime still writes a renamed log (it has not answered
/// `ReopenContainerLog` yet, or is writing out what it buffered before
/// closing it), `None` where the kernel cannot tell (leases unsupported by
/// the filesystem, or not permitted).
///
/// The kernel grants a read lease only on an inode no descriptor has open
/// for writing; the lease is released at once. A process opening the file
/// for writing meanwhile waits those few microseconds; the break is
/// signalled with `SIGIO`, whose default action would end podlogd:
/// [`ignore_lease_breaks`] must have run first (`app` calls it at start-up).
pub fn has_writer(file: &File) -> Option<bool> {
    use std::os::fd::AsRawFd as _;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl with integer arguments on a descriptor `file` owns for
    // the duration of the calls; no memory is passed.
    if unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) } == 0 {
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK) };
        return Some(false);
    }
    match Errno::last() {
        Errno::EAGAIN => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
