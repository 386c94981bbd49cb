//! The one way the daemon opens anything under its log root.
//!
//! Containers influence the names in the pod log tree, and podlogd runs
//! privileged, so a planted symlink must never lead it to a host file. Every
//! open resolves a validated relative path beneath a directory descriptor of
//! the root with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`; where the
//! kernel lacks `openat2` (before 5.6) it walks the path one component at a
//! time with `O_NOFOLLOW`. The result is checked with `fstat` to be of the
//! expected type. Nothing here follows a symlink, at any depth.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
}

impl SafeOpenError {
    /// True when the path does not exist (or a component is not a
    /// directory), as opposed to being refused or failing.
    pub fn is_not_found(&self) -> bool {
        let missing = [Errno::ENOENT as i32, Errno::ENOTDIR as i32];
        matches!(self, SafeOpenError::Io { source, .. }
            if source.raw_os_error().is_some_and(|e| missing.contains(&e)))
    }
}

/// Checks one path component: non-empty, not `.` or `..`, no `/` or NUL.
///
/// # Errors
///
/// [`SafeOpenError::InvalidComponent`] naming the component.
pub fn check_component(c: &str) -> Result<(), SafeOpenError> {
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
}

/// The identity of an opened file: device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
}

/// An opened regular file with the facts `fstat` gave at open time.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub key: FileKey,
    pub size: u64,
    pub nlink: u64,
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
        })
    }

    /// The root's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `openat2` is in use (else the `O_NOFOLLOW` walk).
    pub fn uses_openat2(&self) -> bool {
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
        let flags = flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY;
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
        let fd = self.open_raw(rel, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
        let st = stat::fstat(&fd).map_err(|e| io_err("fstat", &self.display(rel), e))?;
        if kind_of(&st) != Some(Kind::File) {
            return Err(SafeOpenError::WrongKind {
                path: self.display(rel),
                want: Kind::File,
            });
        }
        // A hard link planted in the tree would bypass the symlink checks
        // (it is the host file itself); runtimes and rotation never make one.
        if st.st_nlink > 1 {
            return Err(SafeOpenError::HardLinked {
                path: self.display(rel),
                links: st.st_nlink,
            });
        }
        Ok(Opened {
            file: File::from(fd),
            key: FileKey {
                dev: st.st_dev,
                ino: st.st_ino,
            },
            size: st.st_size.max(0) as u64,
            nlink: st.st_nlink,
        })
    }

    /// Lists a directory beneath the root: `(name, kind)` for regular files
    /// and directories; symlinks and other types are left out.
    ///
    /// # Errors
    ///
    /// As [`SafeRoot::open_file`], for the directory.
    pub fn list_dir(&self, rel: &[&str]) -> Result<Vec<(String, Kind)>, SafeOpenError> {
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

/// `openat2` exists since Linux 5.6; seccomp profiles may also refuse it.
fn probe_openat2(root: &OwnedFd) -> bool {
    let how = fcntl::OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(fcntl::ResolveFlag::RESOLVE_BENEATH | fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS);
    fcntl::openat2(root, ".", how).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn both(root: &Path) -> Vec<SafeRoot> {
        let a = SafeRoot::open(root).unwrap();
        let mut b = SafeRoot::open(root).unwrap();
        b.openat2 = false;
        vec![a, b]
    }

    #[test]
    fn refuses_symlinks_and_escapes() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"host secret").unwrap();
        let root = tempfile::tempdir().unwrap();
        let pod = root.path().join("ns_pod_uid");
        std::fs::create_dir_all(pod.join("c")).unwrap();
        std::fs::write(pod.join("c/0.log"), b"ok").unwrap();
        symlink(outside.path().join("secret"), pod.join("c/1.log")).unwrap();
        symlink(outside.path(), pod.join("d")).unwrap();
        // Same filesystem: a hard link to a file outside the root.
        std::fs::write(root.path().join("outside-secret"), b"host secret").unwrap();
        std::fs::hard_link(root.path().join("outside-secret"), pod.join("c/2.log")).unwrap();
        for r in both(root.path()) {
            assert_eq!(r.open_file(&["ns_pod_uid", "c", "0.log"]).unwrap().size, 2);
            assert!(r.open_file(&["ns_pod_uid", "c", "1.log"]).is_err());
            assert!(matches!(
                r.open_file(&["ns_pod_uid", "c", "2.log"]),
                Err(SafeOpenError::HardLinked { links: 2, .. })
            ));
            assert!(r.open_file(&["ns_pod_uid", "d", "secret"]).is_err());
            assert!(r.open_file(&["..", "secret"]).is_err());
            assert!(r.open_file(&["ns_pod_uid/c", "0.log"]).is_err());
            assert!(
                r.open_file(&["ns_pod_uid", "c"]).is_err(),
                "a directory is not a file"
            );
            let names = r.list_dir(&["ns_pod_uid"]).unwrap();
            assert_eq!(names, vec![("c".to_owned(), Kind::Dir)]);
            assert!(r.list_dir(&["ns_pod_uid", "d"]).is_err());
            assert!(r
                .open_file(&["ns_pod_uid", "c", "nope"])
                .unwrap_err()
                .is_not_found());
        }
    }
}
