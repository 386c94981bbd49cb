//! End-to-end checks of podlogd against a real container runtime.
//!
//! The harness starts a private containerd and runs real pods whose
//! containers write sequence-numbered events; the checks read them back
//! through podlogd. It is not published.
//!
//! - `containerd`: [`Containerd`] runs a throwaway containerd with the CRI
//!   plugin under a temp dir and removes every trace of it on drop;
//!   [`require_runtime`] skips (or, with `PODLOG_E2E=1`, fails) where the
//!   machine cannot run one.
//! - `image`: the `pause` and `busybox` images, built as OCI image layouts
//!   from the host's static busybox because no registry is reachable.
//! - `cri`: [`Cri`] runs pods and containers over CRI as the kubelet would.
//! - `agent`: [`Agent`] runs podlogd in this process on that runtime, with
//!   `curl` as its HTTP client.
//! - `logdir`: [`DirWatch`] samples a container's log directory from
//!   outside (peak disk use, copies of rotated files), [`split_events`]
//!   cuts stored lines back into events, and [`seq_of`] reads the number
//!   of a test writer's line.
//! - `wait`: [`until`] polls a condition within a limit.

mod agent;
mod containerd;
mod cri;
mod image;
mod logdir;
mod wait;

pub use agent::{get, Agent, Follow};
pub use cri::{Cri, Pod, PodSpec};
pub use logdir::{
    is_rotated_plain, listing, parse_cri, reader_order, seq_of, split_events, CriLine, DirWatch,
    SplitReport, StoredEvent, Watched,
};
pub use wait::until;

pub use containerd::{
    chain, require_runtime, require_tools, sweep_leftovers, Containerd, HarnessError, Tools,
    DIR_PREFIX, NAMESPACE, STRICT_ENV,
};
pub use image::{
    is_static_elf, write_oci_archive, BuiltImage, ImageError, ImageSpec, BUSYBOX_APPLETS,
    BUSYBOX_IMAGE, PAUSE_IMAGE,
};
