//! The log root and everything podlogd knows of a file.
//!
//! [`safe_open`] is the one way to a file: every open, rename, create,
//! truncate and delete beneath a configured root goes through it, and it
//! holds the file system's `unsafe` code (the crate's only other is a
//! worker thread's priority, in `serve::workers`). [`fileset`] names and groups a
//! container's files (`N.log`, `N.log.<ts>`, compressed forms), opens them
//! for reading and fingerprints them. Nothing here parses events or knows
//! about pods: that is for `event`, `read` and `node`.

/// Compressed log files, read a window at a time.
pub mod compressed;
pub mod fileset;
// `unsafe`: `openat2`, `renameat2`, leases and `SIGIO`.
#[allow(unsafe_code)]
pub mod safe_open;

/// A container's log directory beneath the root, `<pod dir>/<container>`:
/// the name under which discovery, readers and the lifecycle know a
/// container.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerKey {
    /// `<namespace>_<pod>_<uid>`.
    pub pod_dir: String,
    pub container: String,
}

impl ContainerKey {
    pub fn new(pod_dir: impl Into<String>, container: impl Into<String>) -> Self {
        Self {
            pod_dir: pod_dir.into(),
            container: container.into(),
        }
    }

    /// The directory's path components beneath the root.
    pub fn components(&self) -> [&str; 2] {
        [&self.pod_dir, &self.container]
    }
}

impl std::fmt::Display for ContainerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.pod_dir, self.container)
    }
}
