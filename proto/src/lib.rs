//! Wire definitions: the CRI `runtime.v1` subset podlog speaks to the
//! container runtime, and podlog's own `podlog.v1` gRPC API.
//!
//! The agent serves HTTP from its own types; the generated protobuf modules
//! live here so that neither `policy` nor the agent's pure core depends on
//! them.
