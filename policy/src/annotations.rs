//! From pod annotations and node defaults to one container's effective
//! policy.
//!
//! [`resolve`] documents the layers, their precedence and the fallbacks.

use std::collections::BTreeMap;

use serde::de::{Deserialize, Deserializer};

use crate::error::{PolicyError, Reason};
use crate::fields::{self, join, parse_spec, set_scalar_field, unique_entries, Sink};
use crate::model::limits::MAX_POLICY_YAML_BYTES;
use crate::model::*;
use crate::yaml::{self, Node};

/// Prefix of podlog's annotation keys.
pub const ANNOTATION_PREFIX: &str = "podlog.dev/";
/// The annotation holding the pod's policy YAML.
pub const POLICY_ANNOTATION: &str = "podlog.dev/policy";
/// The `key` of errors in the node defaults.
pub const CONFIG_KEY: &str = "config";

/// Short keys, each with the YAML field it sets for every container.
pub const SHORT_KEYS: [(&str, &str); 7] = [
    ("podlog.dev/rotate", "rotate"),
    ("podlog.dev/max-file-size", "maxFileSize"),
    ("podlog.dev/max-files", "maxFiles"),
    ("podlog.dev/max-total-size", "maxTotalSize"),
    ("podlog.dev/max-age", "maxAge"),
    ("podlog.dev/compress", "compress"),
    ("podlog.dev/max-event-bytes", "maxEventBytes"),
];

const KNOWN_KEYS: &str = "podlog.dev/policy, podlog.dev/rotate, podlog.dev/max-file-size, podlog.dev/max-files, podlog.dev/max-total-size, podlog.dev/max-age, podlog.dev/compress, podlog.dev/max-event-bytes";

/// A container's effective policy and every error met on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The policy to enforce: always complete and within limits.
    pub effective: Effective,
    /// Faulty settings that were left out, in the order: node, pod-wide
    /// (policy YAML, then short keys by key), this container's section, then
    /// conflicts found after merging.
    pub errors: Vec<PolicyError>,
}

/// A pod's parsed `podlog.dev/` annotations, ready to resolve for each of its
/// containers. Parsing once per pod spares re-parsing (and recompiling
/// multi-line patterns) per container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodPolicy {
    /// Top-level fields of `podlog.dev/policy`.
    pod: PolicySpec,
    /// The short keys.
    short: PolicySpec,
    /// `containers.<name>` sections.
    containers: BTreeMap<String, PolicySpec>,
    /// Errors that concern every container.
    errors: Vec<PolicyError>,
    /// Errors inside one container's section.
    container_errors: BTreeMap<String, Vec<PolicyError>>,
}

/// Resolves the effective policy of `container` from the node defaults and
/// the pod's annotations. Shorthand for
/// [`PodPolicy::from_annotations`] then [`PodPolicy::resolve`].
///
/// Never panics and never fails, whatever the annotations hold.
///
/// # Layers and precedence
///
/// From lowest to highest, each layer overriding the ones below it field by
/// field (`annotations` merge key by key):
///
/// 1. built-in defaults ([`Effective::default`]);
/// 2. node defaults (the agent's config, [`PolicySpec::from_node_yaml`]);
/// 3. the top-level fields of the `podlog.dev/policy` YAML;
/// 4. the short keys (`podlog.dev/max-files`, ...), which apply to every
///    container;
/// 5. `containers.<name>` in the `podlog.dev/policy` YAML.
///
/// Short keys sit above the YAML's pod-level fields: a short key is the
/// narrow, explicit override an operator adds with `kubectl annotate` on top
/// of a pod's policy document, and it should win without editing the
/// document. A container's own section stays the most specific and wins over
/// both.
///
/// # Errors and fallbacks
///
/// Nothing here fails: every problem becomes a [`PolicyError`] next to the
/// effective policy, which stays fully limited.
///
/// - A faulty field or short key is left out; the layers below supply that
///   field (ultimately the node default). Its neighbours still apply.
/// - A `podlog.dev/policy` value that is not YAML, is over 64 KiB, nests past
///   16 levels (or holds more than 64 unclosed `[`/`{`, checked before
///   parsing), expands through aliases past three times its size, has tags,
///   or is not a mapping is dropped as a whole (pod-level fields and every
///   container section); the short keys still apply. An empty value sets
///   nothing.
/// - A `containers.<name>` section that is not a mapping is dropped; a
///   faulty field in it is dropped alone.
/// - An unknown `podlog.dev/` key or an unknown YAML field is an error that
///   changes nothing else. Annotations outside `podlog.dev/` are ignored.
/// - After merging, `maxTotalSize` must be at least `maxFileSize`. If not,
///   each of the two that came from a pod annotation is reported and
///   reverted to the node's value.
///
/// ```
/// use std::collections::BTreeMap;
/// use podlog_policy::{resolve, PolicySpec, Rotate};
///
/// let annotations = BTreeMap::from([
///     ("podlog.dev/policy".to_owned(), "containers: {bar: {rotate: hourly}}".to_owned()),
///     ("podlog.dev/max-files".to_owned(), "0".to_owned()),
/// ]);
/// let r = resolve(&PolicySpec::default(), &annotations, "bar");
/// assert_eq!(r.effective.rotate, Rotate::Hourly);
/// assert_eq!(r.effective.max_files, 5); // the faulty key fell back to the default
/// assert_eq!(r.errors[0].key, "podlog.dev/max-files");
/// ```
pub fn resolve(
    node: &PolicySpec,
    annotations: &BTreeMap<String, String>,
    container: &str,
) -> Resolved {
    PodPolicy::from_annotations(annotations).resolve(node, container)
}

// === impl PodPolicy ===

impl PodPolicy {
    /// Parses the `podlog.dev/` annotations among `annotations` (any map of
    /// strings: `&BTreeMap`, `&HashMap`, pairs). Other keys are ignored.
    pub fn from_annotations<K, V>(annotations: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut ours: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in annotations {
            if k.as_ref().starts_with(ANNOTATION_PREFIX) {
                ours.insert(k.as_ref().to_owned(), v.as_ref().to_owned());
            }
        }
        let mut pod = PodPolicy::default();
        if let Some(text) = ours.get(POLICY_ANNOTATION) {
            pod.parse_policy_yaml(text);
        }
        for (key, value) in &ours {
            if key == POLICY_ANNOTATION {
                continue;
            }
            let mut sink = Sink {
                key,
                errors: &mut pod.errors,
            };
            let Some((_, field)) = SHORT_KEYS.iter().find(|(k, _)| k == key) else {
                sink.push("", value, Reason::UnknownKey { known: KNOWN_KEYS });
                continue;
            };
            let node = Node::Str(value.clone());
            if let Err(reason) = set_scalar_field(&mut pod.short, field, &node, "") {
                sink.push("", value, reason);
            }
        }
        pod
    }

    fn parse_policy_yaml(&mut self, text: &str) {
        let mut sink = Sink {
            key: POLICY_ANNOTATION,
            errors: &mut self.errors,
        };
        if text.len() > MAX_POLICY_YAML_BYTES {
            sink.push(
                "",
                text,
                Reason::TooLarge {
                    len: text.len(),
                    max: MAX_POLICY_YAML_BYTES,
                },
            );
            return;
        }
        let doc = match yaml::parse(text) {
            // An empty annotation sets nothing.
            Ok(Node::Null) => return,
            Ok(doc) => doc,
            Err(reason) => {
                sink.push("", text, reason);
                return;
            }
        };
        let (spec, containers) = parse_spec(&doc, "", true, &mut sink);
        self.pod = spec;
        let Some(containers) = containers else {
            return;
        };
        let Node::Map(entries) = containers else {
            sink.push(
                "containers",
                &containers.display(),
                Reason::WrongType {
                    expected: "a mapping of container names to policies",
                    found: containers.kind(),
                },
            );
            return;
        };
        for (name, section) in unique_entries(entries, "containers", &mut sink) {
            let mut errors = Vec::new();
            let (spec, _) = parse_spec(
                section,
                &join("containers", name),
                false,
                &mut Sink {
                    key: POLICY_ANNOTATION,
                    errors: &mut errors,
                },
            );
            self.containers.insert(name.to_owned(), spec);
            if !errors.is_empty() {
                self.container_errors.insert(name.to_owned(), errors);
            }
        }
    }

    /// The container names that have a section in `podlog.dev/policy`; the
    /// caller can flag names that match no container of the pod.
    pub fn container_names(&self) -> impl Iterator<Item = &str> {
        self.containers.keys().map(String::as_str)
    }

    /// Every parse error of the pod: pod-wide ones, then each container
    /// section's (conflicts found while merging appear only in
    /// [`PodPolicy::resolve`]).
    pub fn errors(&self) -> impl Iterator<Item = &PolicyError> {
        self.errors
            .iter()
            .chain(self.container_errors.values().flatten())
    }

    /// The effective policy of `container` over the node defaults `node`.
    ///
    /// `node` is expected to come from [`PolicySpec::from_node_yaml`]; a
    /// hand-built value is checked again and its faulty fields are reported
    /// under the key `config` and replaced by the built-in defaults.
    pub fn resolve(&self, node: &PolicySpec, container: &str) -> Resolved {
        let mut errors = Vec::new();
        let node = fields::sanitize(node, CONFIG_KEY, &mut errors);
        errors.extend(self.errors.iter().cloned());
        if let Some(e) = self.container_errors.get(container) {
            errors.extend(e.iter().cloned());
        }
        let empty = PolicySpec::default();
        let section = self.containers.get(container).unwrap_or(&empty);
        let layers = [
            (Layer::Node, &node),
            (Layer::PodYaml, &self.pod),
            (Layer::Short, &self.short),
            (Layer::Container(container), section),
        ];
        let effective = merge(&layers, &mut errors);
        Resolved { effective, errors }
    }
}

/// Where a layer's settings were written, to name them in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer<'a> {
    Node,
    PodYaml,
    Short,
    Container(&'a str),
}

// === impl Layer ===

impl Layer<'_> {
    /// `(key, field path)` of `field` (YAML spelling) in this layer.
    fn origin(self, field: &str) -> (String, String) {
        match self {
            Layer::Node => (CONFIG_KEY.to_owned(), field.to_owned()),
            Layer::PodYaml => (POLICY_ANNOTATION.to_owned(), field.to_owned()),
            Layer::Short => {
                let key = SHORT_KEYS
                    .iter()
                    .find(|(_, f)| *f == field)
                    .map_or(POLICY_ANNOTATION, |(k, _)| *k);
                (key.to_owned(), String::new())
            }
            Layer::Container(name) => (
                POLICY_ANNOTATION.to_owned(),
                format!("containers.{name}.{field}"),
            ),
        }
    }
}

/// The highest layer that sets a field, and its value.
fn pick<'a, T: Clone>(
    layers: &[(Layer<'a>, &PolicySpec)],
    get: impl Fn(&PolicySpec) -> Option<T>,
) -> Option<(Layer<'a>, T)> {
    layers
        .iter()
        .rev()
        .find_map(|(layer, spec)| get(spec).map(|v| (*layer, v)))
}

fn merge(layers: &[(Layer<'_>, &PolicySpec)], errors: &mut Vec<PolicyError>) -> Effective {
    let d = Effective::default();
    let max_files = value(pick(layers, |s| s.max_files), d.max_files);
    let mut annotations = BTreeMap::new();
    for (_, spec) in layers {
        annotations.extend(spec.annotations.clone());
    }
    let (max_file_size, max_total_size) = sizes(layers, max_files, errors);
    Effective {
        rotate: value(pick(layers, |s| s.rotate), d.rotate),
        max_file_size,
        max_files,
        max_total_size,
        max_age: pick(layers, |s| s.max_age).map(|(_, v)| v),
        compress: value(pick(layers, |s| s.compress), d.compress),
        delimiter: value(pick(layers, |s| s.delimiter.clone()), d.delimiter),
        max_event_bytes: value(pick(layers, |s| s.max_event_bytes), d.max_event_bytes),
        annotations,
    }
}

fn value<T>(picked: Option<(Layer<'_>, T)>, default: T) -> T {
    picked.map_or(default, |(_, v)| v)
}

/// `(maxFileSize, maxTotalSize)`, with `maxTotalSize >= maxFileSize`.
fn sizes(
    layers: &[(Layer<'_>, &PolicySpec)],
    max_files: u32,
    errors: &mut Vec<PolicyError>,
) -> (u64, u64) {
    let default_file = limits::DEFAULT_MAX_FILE_SIZE;
    let file = pick(layers, |s| s.max_file_size);
    let total = pick(layers, |s| s.max_total_size);
    let derived = |file: u64| file.saturating_mul(u64::from(max_files));
    let file_size = file.map_or(default_file, |(_, v)| v);
    let Some((total_layer, total_size)) = total else {
        return (file_size, derived(file_size));
    };
    if total_size >= file_size {
        return (file_size, total_size);
    }
    // Conflict: revert whichever of the two a pod annotation set.
    let conflict = Reason::TotalBelowFileSize {
        total: total_size,
        file: file_size,
    };
    let node = layers
        .iter()
        .find(|(l, _)| *l == Layer::Node)
        .map(|(_, s)| *s);
    let mut file_size = file_size;
    let mut total_size = Some(total_size);
    if let Some((layer, v)) = file {
        if layer != Layer::Node {
            let (key, field) = layer.origin("maxFileSize");
            errors.push(PolicyError::new(
                key,
                field,
                &v.to_string(),
                conflict.clone(),
            ));
            file_size = node.and_then(|n| n.max_file_size).unwrap_or(default_file);
        }
    }
    if total_layer != Layer::Node {
        let (key, field) = total_layer.origin("maxTotalSize");
        errors.push(PolicyError::new(
            key,
            field,
            &total_size.unwrap_or_default().to_string(),
            conflict,
        ));
        total_size = node.and_then(|n| n.max_total_size);
    }
    match total_size {
        None => (file_size, derived(file_size)),
        Some(t) if t >= file_size => (file_size, t),
        Some(t) => {
            // The node defaults conflict by themselves (a hand-built spec):
            // drop the node's total rather than enforce a contradiction.
            errors.push(PolicyError::new(
                CONFIG_KEY,
                "maxTotalSize",
                &t.to_string(),
                Reason::TotalBelowFileSize {
                    total: t,
                    file: file_size,
                },
            ));
            (file_size, derived(file_size))
        }
    }
}

// === impl PolicySpec ===

impl PolicySpec {
    /// Parses node defaults: a YAML mapping with the fields of
    /// `podlog.dev/policy` in camelCase, without `containers`. An empty
    /// document is an empty spec.
    ///
    /// ```
    /// let node = podlog_policy::PolicySpec::from_node_yaml("maxFiles: 3\nmaxAge: 7d").unwrap();
    /// assert_eq!(node.max_files, Some(3));
    /// ```
    ///
    /// # Errors
    ///
    /// Every faulty field, each under the key `config`: node defaults are
    /// the agent's own configuration, so the caller refuses to start rather
    /// than fall back.
    pub fn from_node_yaml(text: &str) -> Result<PolicySpec, Vec<PolicyError>> {
        match yaml::parse(text) {
            Ok(node) => Self::from_node_tree(&node),
            Err(reason) => Err(vec![PolicyError::new(CONFIG_KEY, "", text, reason)]),
        }
    }

    fn from_node_tree(node: &Node) -> Result<PolicySpec, Vec<PolicyError>> {
        if *node == Node::Null {
            return Ok(PolicySpec::default());
        }
        let mut errors = Vec::new();
        let (spec, _) = parse_spec(
            node,
            "",
            false,
            &mut Sink {
                key: CONFIG_KEY,
                errors: &mut errors,
            },
        );
        let file = spec.max_file_size.unwrap_or(limits::DEFAULT_MAX_FILE_SIZE);
        if let Some(total) = spec.max_total_size.filter(|t| *t < file) {
            errors.push(PolicyError::new(
                CONFIG_KEY,
                "maxTotalSize",
                &total.to_string(),
                Reason::TotalBelowFileSize { total, file },
            ));
        }
        if errors.is_empty() {
            Ok(spec)
        } else {
            Err(errors)
        }
    }
}

/// Node defaults embedded in the agent's config (`policy: {...}`): the same
/// rules as [`PolicySpec::from_node_yaml`], with every error in one message.
impl<'de> Deserialize<'de> for PolicySpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let node = yaml::from_deserializer(d)?;
        PolicySpec::from_node_tree(&node).map_err(|errors| {
            let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
            serde::de::Error::custom(all.join("; "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const DESIGN_EXAMPLE: &str = r"containers:
  foo:
    rotate: daily
    annotations: {fluentd-config: 'actual fluentd configuration'}
  bar:
    rotate: hourly
    maxFileSize: 10Mi
    maxTotalSize: 100Mi
    delimiter: {multiline: {start: '^\d{4}-\d{2}-\d{2}'}}
";

    #[test]
    fn design_example() {
        let a = ann(&[
            ("podlog.dev/policy", DESIGN_EXAMPLE),
            ("podlog.dev/max-files", "5"),
            ("kubernetes.io/config.seen", "2026-11-21"),
        ]);
        let node = PolicySpec::default();
        let foo = resolve(&node, &a, "foo");
        assert_eq!(foo.errors, vec![]);
        assert_eq!(foo.effective.rotate, Rotate::Daily);
        assert_eq!(foo.effective.max_files, 5);
        assert_eq!(
            foo.effective.annotations,
            BTreeMap::from([(
                "fluentd-config".to_owned(),
                "actual fluentd configuration".to_owned()
            )])
        );
        let bar = resolve(&node, &a, "bar");
        assert_eq!(bar.errors, vec![]);
        assert_eq!(bar.effective.rotate, Rotate::Hourly);
        assert_eq!(bar.effective.max_file_size, 10 << 20);
        assert_eq!(bar.effective.max_total_size, 100 << 20);
        assert!(matches!(bar.effective.delimiter, Delimiter::Multiline(_)));
        let other = resolve(&node, &a, "sidecar");
        assert_eq!(
            other.effective,
            Effective {
                max_files: 5,
                ..Effective::default()
            }
        );
    }

    #[test]
    fn layers_in_order() {
        let node = PolicySpec::from_node_yaml(
            "maxFiles: 3\nmaxAge: 7d\ncompress: gzip\nannotations: {team: infra, tier: node}",
        )
        .unwrap();
        let a = ann(&[
            (
                "podlog.dev/policy",
                "maxFiles: 4\nmaxAge: 1d\nrotate: hourly\nannotations: {tier: pod}\n\
                 containers: {c: {maxFiles: 9, annotations: {tier: container}}}",
            ),
            ("podlog.dev/max-files", "6"),
            ("podlog.dev/rotate", "daily"),
        ]);
        let c = resolve(&node, &a, "c");
        assert_eq!(c.errors, vec![]);
        // container section > short key > pod YAML > node > default.
        assert_eq!(c.effective.max_files, 9);
        assert_eq!(c.effective.rotate, Rotate::Daily);
        assert_eq!(c.effective.max_age, Some(Duration::from_secs(86_400)));
        assert_eq!(c.effective.compress, Compress::Gzip);
        assert_eq!(c.effective.max_event_bytes, crate::DEFAULT_MAX_EVENT_BYTES);
        assert_eq!(c.effective.annotations["tier"], "container");
        assert_eq!(c.effective.annotations["team"], "infra");
        let d = resolve(&node, &a, "d");
        assert_eq!(d.effective.max_files, 6);
        assert_eq!(d.effective.annotations["tier"], "pod");
        // Derived total: maxFileSize × maxFiles.
        assert_eq!(d.effective.max_total_size, 6 * (10 << 20));
    }

    #[test]
    fn bad_short_key_falls_back_to_node() {
        let node = PolicySpec {
            max_files: Some(3),
            ..PolicySpec::default()
        };
        let a = ann(&[
            ("podlog.dev/policy", "maxFiles: 8"),
            ("podlog.dev/max-files", "0"),
        ]);
        let r = resolve(&node, &a, "c");
        // The short key is dropped; the pod YAML's value (the next layer
        // down) applies.
        assert_eq!(r.effective.max_files, 8);
        assert_eq!(
            r.errors,
            vec![PolicyError::new(
                "podlog.dev/max-files",
                "",
                "0",
                Reason::OutOfRange {
                    allowed: "2..=1000"
                }
            )]
        );
        let r = resolve(&node, &ann(&[("podlog.dev/max-files", "-1")]), "c");
        assert_eq!(r.effective.max_files, 3);
        assert_eq!(r.errors[0].reason, Reason::Negative);
    }

    #[test]
    fn unknown_keys() {
        let a = ann(&[
            ("podlog.dev/max-file", "1Mi"),
            ("podlog.dev/", "x"),
            ("Podlog.dev/max-files", "1"),
            ("example.com/podlog.dev/x", "1"),
            ("podlog.dev/max-files", "7"),
        ]);
        let r = resolve(&PolicySpec::default(), &a, "c");
        assert_eq!(r.effective.max_files, 7);
        let keys: Vec<&str> = r.errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["podlog.dev/", "podlog.dev/max-file"]);
        assert!(r
            .errors
            .iter()
            .all(|e| matches!(e.reason, Reason::UnknownKey { .. })));
    }

    #[test]
    fn every_short_key() {
        let a = ann(&[
            ("podlog.dev/rotate", "hourly"),
            ("podlog.dev/max-file-size", "1Mi"),
            ("podlog.dev/max-files", " 12 "),
            ("podlog.dev/max-total-size", "20Mi"),
            ("podlog.dev/max-age", "36h"),
            ("podlog.dev/compress", "zstd"),
            ("podlog.dev/max-event-bytes", "64Ki"),
        ]);
        let r = resolve(&PolicySpec::default(), &a, "c");
        assert_eq!(r.errors, vec![]);
        assert_eq!(
            r.effective,
            Effective {
                rotate: Rotate::Hourly,
                max_file_size: 1 << 20,
                max_files: 12,
                max_total_size: 20 << 20,
                max_age: Some(Duration::from_secs(36 * 3600)),
                compress: Compress::Zstd,
                delimiter: Delimiter::Newline,
                max_event_bytes: 64 << 10,
                annotations: BTreeMap::new(),
            }
        );
    }

    #[test]
    fn whole_yaml_dropped_when_unparseable_short_keys_still_apply() {
        let node = PolicySpec {
            max_files: Some(3),
            ..PolicySpec::default()
        };
        for (text, want) in [
            ("maxFiles: [", "yaml"),
            ("- 1\n- 2", "type"),
            ("hello", "type"),
            ("!tag {maxFiles: 4}", "type"),
        ] {
            let a = ann(&[("podlog.dev/policy", text), ("podlog.dev/compress", "gzip")]);
            let r = resolve(&node, &a, "c");
            assert_eq!(r.effective.max_files, 3, "{text}");
            assert_eq!(r.effective.compress, Compress::Gzip);
            assert_eq!(r.errors.len(), 1, "{text}: {:?}", r.errors);
            let e = &r.errors[0];
            assert_eq!(e.key, "podlog.dev/policy");
            match want {
                "yaml" => assert!(matches!(e.reason, Reason::Yaml { .. })),
                _ => assert!(matches!(e.reason, Reason::WrongType { .. })),
            }
        }
    }

    #[test]
    fn empty_policy_annotation_sets_nothing() {
        for text in ["", "  \n", "~", "# only a comment"] {
            let r = resolve(
                &PolicySpec::default(),
                &ann(&[("podlog.dev/policy", text)]),
                "c",
            );
            assert_eq!(r.errors, vec![], "{text:?}");
            assert_eq!(r.effective, Effective::default());
        }
    }

    #[test]
    fn oversized_yaml_refused_before_parsing() {
        let text = format!("maxFiles: 4\n#{}", "x".repeat(70_000));
        let r = resolve(
            &PolicySpec::default(),
            &ann(&[("podlog.dev/policy", &text)]),
            "c",
        );
        assert_eq!(r.effective.max_files, 5);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(
            r.errors[0].reason,
            Reason::TooLarge {
                len: text.len(),
                max: 64 << 10
            }
        );
        assert_eq!(r.errors[0].value.chars().count(), 81);
    }

    #[test]
    fn billion_laughs_in_annotations() {
        // Aliased annotation maps across many containers: without the budget
        // this expands to gigabytes of strings.
        let mut text = String::new();
        let long = "y".repeat(2000);
        let entries: Vec<String> = (0..200).map(|i| format!("k{i}: *s")).collect();
        let containers: Vec<String> = (0..500)
            .map(|i| format!("c{i}: {{annotations: *m}}"))
            .collect();
        text.push_str(&format!(
            "annotations: &m {{s: &s \"{long}\", {}}}\ncontainers: {{{}}}\n",
            entries.join(", "),
            containers.join(", ")
        ));
        assert!(text.len() < 64 << 10, "{}", text.len());
        let r = resolve(
            &PolicySpec::default(),
            &ann(&[("podlog.dev/policy", &text)]),
            "c1",
        );
        assert_eq!(r.effective, Effective::default());
        assert_eq!(r.errors.len(), 1);
        assert!(matches!(r.errors[0].reason, Reason::Expansion { .. }));
    }

    #[test]
    fn container_section_errors() {
        let a = ann(&[(
            "podlog.dev/policy",
            "maxFiles: 4\ncontainers: {a: [1], b: {maxFiles: 0, rotate: daily}, c: {maxFiles: 6}, c: {maxFiles: 7}}",
        )]);
        let pod = PodPolicy::from_annotations(&a);
        let ra = pod.resolve(&PolicySpec::default(), "a");
        assert_eq!(ra.effective.max_files, 4);
        assert_eq!(ra.errors.len(), 2, "{:?}", ra.errors); // containers.c duplicate + a not a mapping
        let rb = pod.resolve(&PolicySpec::default(), "b");
        assert_eq!(rb.effective.max_files, 4);
        assert_eq!(rb.effective.rotate, Rotate::Daily);
        assert!(rb.errors.iter().any(|e| e.field == "containers.b.maxFiles"));
        // Both `c` sections are dropped.
        let rc = pod.resolve(&PolicySpec::default(), "c");
        assert_eq!(rc.effective.max_files, 4);
        assert_eq!(pod.container_names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(pod.errors().count(), 3);

        let r = resolve(
            &PolicySpec::default(),
            &ann(&[("podlog.dev/policy", "containers: [a, b]\nmaxFiles: 3")]),
            "a",
        );
        assert_eq!(r.effective.max_files, 3);
        assert_eq!(r.errors[0].field, "containers");
    }

    #[test]
    fn total_below_file_size_reverts_the_pod_side() {
        let node = PolicySpec::from_node_yaml("maxTotalSize: 50Mi").unwrap();
        let r = resolve(&node, &ann(&[("podlog.dev/max-file-size", "100Mi")]), "c");
        assert_eq!(r.effective.max_file_size, 10 << 20);
        assert_eq!(r.effective.max_total_size, 50 << 20);
        assert_eq!(
            r.errors,
            vec![PolicyError::new(
                "podlog.dev/max-file-size",
                "",
                "104857600",
                Reason::TotalBelowFileSize {
                    total: 50 << 20,
                    file: 100 << 20
                }
            )]
        );

        let a = ann(&[("podlog.dev/policy", "containers: {c: {maxTotalSize: 5Mi}}")]);
        let r = resolve(&PolicySpec::default(), &a, "c");
        assert_eq!(r.effective.max_total_size, 50 << 20);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].field, "containers.c.maxTotalSize");

        // Both from the pod: both reverted.
        let a = ann(&[
            ("podlog.dev/policy", "maxTotalSize: 1Mi"),
            ("podlog.dev/max-file-size", "2Mi"),
        ]);
        let r = resolve(&node, &a, "c");
        assert_eq!(
            (r.effective.max_file_size, r.effective.max_total_size),
            (10 << 20, 50 << 20)
        );
        assert_eq!(r.errors.len(), 2);
    }

    #[test]
    fn inconsistent_hand_built_node_is_repaired() {
        let node = PolicySpec {
            max_file_size: Some(100 << 20),
            max_total_size: Some(10 << 20),
            max_files: Some(0),
            ..PolicySpec::default()
        };
        let r = resolve(&node, &BTreeMap::new(), "c");
        assert_eq!(r.effective.max_files, 5);
        assert_eq!(r.effective.max_file_size, 100 << 20);
        assert_eq!(r.effective.max_total_size, 500 << 20);
        assert_eq!(r.errors.len(), 2);
        assert!(r.errors.iter().all(|e| e.key == "config"));
    }

    #[test]
    fn node_yaml() {
        assert_eq!(PolicySpec::from_node_yaml(""), Ok(PolicySpec::default()));
        let errs = PolicySpec::from_node_yaml("maxFiles: 0\ncontainers: {}\nmaxTotalSize: 1Mi")
            .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["maxFiles", "containers", "maxTotalSize"]);
        assert!(errs.iter().all(|e| e.key == "config"));
        assert!(PolicySpec::from_node_yaml("[").is_err());
        assert!(PolicySpec::from_node_yaml("- a").is_err());
    }

    #[test]
    fn deserialize_inside_agent_config() {
        #[derive(serde::Deserialize)]
        struct Config {
            policy: PolicySpec,
        }
        let c: Config = serde_yaml::from_str("policy:\n  maxFiles: 4\n  rotate: daily").unwrap();
        assert_eq!(c.policy.max_files, Some(4));
        assert_eq!(c.policy.rotate, Some(Rotate::Daily));
        let e = serde_yaml::from_str::<Config>("policy:\n  maxFiles: 0\n  rotat: daily")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("config (maxFiles)"), "{e}");
        assert!(e.contains("config (rotat)"), "{e}");
    }

    #[test]
    fn long_values_truncated_in_errors() {
        let long = "9".repeat(10_000);
        let r = resolve(
            &PolicySpec::default(),
            &ann(&[("podlog.dev/max-file-size", &long)]),
            "c",
        );
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].value.chars().count(), 81);
        assert!(r.errors[0].to_string().len() < 300);
    }

    #[test]
    fn hash_map_input() {
        let a: std::collections::HashMap<String, String> =
            [("podlog.dev/max-files".to_owned(), "9".to_owned())].into();
        let pod = PodPolicy::from_annotations(&a);
        assert_eq!(
            pod.resolve(&PolicySpec::default(), "c").effective.max_files,
            9
        );
    }

    #[test]
    fn effective_serializes_in_camel_case() {
        let r = resolve(
            &PolicySpec::default(),
            &ann(&[(
                "podlog.dev/policy",
                "maxAge: 90m\ndelimiter: {multiline: {start: '^x'}}",
            )]),
            "c",
        );
        let yaml = serde_yaml::to_string(&r.effective).unwrap();
        assert!(yaml.contains("maxAge: 1h30m"), "{yaml}");
        assert!(yaml.contains("start: ^x"), "{yaml}");
        assert!(yaml.contains("flushAfter: 2s"), "{yaml}");
        assert!(yaml.contains("maxFileSize: 10485760"), "{yaml}");
        assert!(yaml.contains("rotate: never"), "{yaml}");
    }
}
