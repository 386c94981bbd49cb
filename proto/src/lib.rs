//! Wire definitions: the CRI `runtime.v1` subset podlog speaks to the
//! container runtime, and podlog's own `podlog.v1` gRPC API.
//!
//! The agent serves HTTP from its own types; the generated protobuf modules
//! live here so that neither `policy` nor the agent's pure core depends on
//! them. Both are compiled by `build.rs` with protox, so building needs no
//! system `protoc`.

/// CRI `runtime.v1` (subset): see `cri/api.proto`.
pub mod cri {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("runtime.v1");
}

/// podlog's own API, `podlog.v1`: see `podlog/v1/logs.proto`.
pub mod podlog {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("podlog.v1");
}
