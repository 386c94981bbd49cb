//! podlog's policy model: pure values and parsing, no I/O.
//!
//! This crate turns operator input into checked values and plans retention:
//!
//! - sizes (`10Mi`, `1G`) and durations (`36h`, `1h30m`): [`parse_size`],
//!   [`parse_duration`];
//! - the policy model: a partial [`PolicySpec`] per layer and the resolved
//!   [`Effective`] policy of a container;
//! - node defaults from YAML ([`PolicySpec::from_node_yaml`], or
//!   `Deserialize` inside the agent's config) and pod annotations
//!   (`podlog.dev/policy` YAML and short keys) merged into an [`Effective`]
//!   by [`resolve`] / [`PodPolicy`], with every faulty setting reported as a
//!   [`PolicyError`] and replaced by the layer below;
//! - retention planning: [`plan`] maps a container's files, the policy and
//!   the time to [`Action`]s.
//!
//! Nothing here touches the filesystem, the network, a clock or a runtime:
//! the current time is an argument. Reading annotations from the runtime,
//! surfacing errors and carrying out actions are the agent's.
//!
//! ```
//! use std::collections::BTreeMap;
//! use podlog_policy::{resolve, Delimiter, PolicySpec};
//!
//! let node = PolicySpec::from_node_yaml("maxFiles: 3\ncompress: gzip").unwrap();
//! let annotations = BTreeMap::from([
//!     (
//!         "podlog.dev/policy".to_owned(),
//!         "containers:\n  bar:\n    maxFileSize: 10Mi\n    delimiter: {multiline: {start: '^\\d{4}-'}}\n"
//!             .to_owned(),
//!     ),
//!     ("podlog.dev/max-age".to_owned(), "7d".to_owned()),
//! ]);
//! let bar = resolve(&node, &annotations, "bar");
//! assert!(bar.errors.is_empty());
//! assert_eq!(bar.effective.max_file_size, 10 << 20);
//! assert_eq!(bar.effective.max_files, 3);
//! assert!(matches!(bar.effective.delimiter, Delimiter::Multiline(_)));
//! ```
#![warn(missing_docs)]

mod annotations;
mod error;
mod fields;
mod model;
mod quantity;
mod retention;
mod yaml;

pub use annotations::{
    resolve, PodPolicy, Resolved, ANNOTATION_PREFIX, CONFIG_KEY, POLICY_ANNOTATION, SHORT_KEYS,
};
pub use error::{PolicyError, Reason, MAX_ERROR_VALUE_CHARS};
pub use model::{
    limits, Compress, Delimiter, Effective, Multiline, PolicySpec, Rotate, StartPattern,
};
pub use quantity::{format_duration, parse_duration, parse_size, DurationError, SizeError};
pub use retention::{plan, Action, EventMark, FileFacts, HeadTrim};

/// Default cap on one event's content, in bytes (1 MiB).
pub const DEFAULT_MAX_EVENT_BYTES: u64 = 1 << 20;
