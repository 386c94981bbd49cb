//! End-to-end checks of podlogd against a real container runtime.
//!
//! The harness starts a private containerd and runs real pods whose
//! containers write sequence-numbered events; the checks read them back
//! through podlogd. It is not published and has no library API of its own.
