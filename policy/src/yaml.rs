//! YAML into a small tree, with bounds that hold for hostile input.
//!
//! `serde_yaml` 0.9 expands aliases as it deserializes: each `*a` replays
//! the anchored node. It stops after `100 × events` alias jumps and at 128
//! levels of nesting, but a few kilobytes of nested aliases still expand to
//! gigabytes when the target materializes them (billion laughs). So the
//! tree here is built through a [`DeserializeSeed`] that charges every node
//! (1) and every scalar byte against a budget proportional to the input's
//! length, and stops at a small depth. Honest YAML never exceeds the budget
//! (a document has at most about one node per byte, and escapes expand a
//! scalar at most 1.5×), and moderate alias use still works; an expansion
//! bomb fails after at most the budget's work, without allocating more.
//!
//! The tree keeps what the policy parsers need to give precise errors per
//! field: integers of any size, floats apart from integers, mapping entries
//! in order with duplicates.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{short_message, Reason};

/// Deepest nesting accepted. The policy format needs 5
/// (`containers.bar.delimiter.multiline.start`); the rest is margin.
pub(crate) const MAX_DEPTH: usize = 16;

/// Most unclosed `[` and `{` characters accepted before parsing, counted
/// anywhere in the text (strings included, so a few unbalanced brackets in
/// a regex are fine). libyaml takes quadratic time on deeply nested flow
/// mappings (48 KiB of `{a: ` costs over half a second), before any depth
/// limit of the deserializer applies.
pub(crate) const MAX_FLOW_DEPTH: usize = 64;

/// The largest running count of unclosed `[`/`{` in `text`.
fn flow_depth(text: &str) -> usize {
    let mut depth: usize = 0;
    let mut max = 0;
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// A parsed YAML value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Int(i128),
    /// An integer above `i128::MAX`.
    BigInt,
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    /// A value with an application tag (`!foo`).
    Tagged,
}

// === impl Node ===

impl Node {
    /// The YAML type's name, for errors.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) | Node::BigInt => "an integer",
            Node::Float(_) => "a number with a fraction",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
            Node::Tagged => "a tagged value",
        }
    }

    /// A short text form of the value for errors (cut later).
    pub(crate) fn display(&self) -> String {
        match self {
            Node::Null => "null".to_owned(),
            Node::Bool(b) => b.to_string(),
            Node::Int(i) => i.to_string(),
            Node::BigInt => "(an integer above 2^127)".to_owned(),
            Node::Float(f) => f.to_string(),
            Node::Str(s) => s.clone(),
            Node::Seq(items) => format!("[a list of {}]", items.len()),
            Node::Map(entries) => {
                let keys: Vec<String> = entries
                    .iter()
                    .take(8)
                    .map(|(k, _)| match k {
                        Node::Str(s) => s.clone(),
                        other => other.display(),
                    })
                    .collect();
                let more = if entries.len() > 8 { ", …" } else { "" };
                format!("{{{}{more}}}", keys.join(", "))
            }
            Node::Tagged => "(a tagged value)".to_owned(),
        }
    }
}

/// Parses `text` as one YAML document within the expansion budget and
/// [`MAX_DEPTH`]. An empty document is [`Node::Null`].
pub(crate) fn parse(text: &str) -> Result<Node, Reason> {
    if flow_depth(text) > MAX_FLOW_DEPTH {
        return Err(Reason::TooDeep {
            max: MAX_FLOW_DEPTH,
        });
    }
    let budget = Budget::new(text.len().saturating_mul(3).saturating_add(64));
    let seed = NodeSeed {
        budget: &budget,
        depth: 0,
    };
    match seed.deserialize(serde_yaml::Deserializer::from_str(text)) {
        Ok(node) => Ok(node),
        Err(e) => Err(budget.failure().unwrap_or_else(|| Reason::Yaml {
            message: short_message(&e.to_string()),
        })),
    }
}

/// Builds a tree from any self-describing deserializer, with no expansion
/// budget (for trusted input such as the agent's own config) but with the
/// depth bound.
pub(crate) fn from_deserializer<'de, D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
    let budget = Budget::new(usize::MAX);
    NodeSeed {
        budget: &budget,
        depth: 0,
    }
    .deserialize(d)
}

/// What is left to spend, and why parsing stopped if it did.
struct Budget {
    max: usize,
    left: Cell<usize>,
    failure: Cell<Option<Failure>>,
}

#[derive(Clone, Copy)]
enum Failure {
    Expansion,
    TooDeep,
}

#[derive(Clone, Copy)]
struct NodeSeed<'b> {
    budget: &'b Budget,
    depth: usize,
}

// === impl Budget ===

impl Budget {
    fn new(max: usize) -> Self {
        Self {
            max,
            left: Cell::new(max),
            failure: Cell::new(None),
        }
    }

    fn charge<E: de::Error>(&self, cost: usize) -> Result<(), E> {
        match self.left.get().checked_sub(cost) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.failure.set(Some(Failure::Expansion));
                Err(E::custom("expansion budget exceeded"))
            }
        }
    }

    fn failure(&self) -> Option<Reason> {
        self.failure.get().map(|f| match f {
            Failure::Expansion => Reason::Expansion { max: self.max },
            Failure::TooDeep => Reason::TooDeep { max: MAX_DEPTH },
        })
    }
}

// === impl NodeSeed ===

impl NodeSeed<'_> {
    fn child<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            self.budget.failure.set(Some(Failure::TooDeep));
            return Err(E::custom("nested too deep"));
        }
        Ok(Self {
            budget: self.budget,
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        self.budget.charge(1)?;
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        self.budget.charge(1)?;
        Ok(Node::Int(i128::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        self.budget.charge(1)?;
        Ok(Node::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        self.budget.charge(1)?;
        Ok(Node::Int(i128::from(v)))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        self.budget.charge(1)?;
        Ok(i128::try_from(v).map_or(Node::BigInt, Node::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        self.budget.charge(1)?;
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        self.budget.charge(v.len().saturating_add(1))?;
        Ok(Node::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        self.budget.charge(v.len().saturating_add(1))?;
        Ok(Node::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        // Only non-YAML deserializers produce bytes; keep them as text.
        self.visit_str(&String::from_utf8_lossy(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        self.budget.charge(1)?;
        Ok(Node::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self.child()?)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self.child()?)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        self.budget.charge(1)?;
        let child = self.child()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(child)? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        self.budget.charge(1)?;
        let child = self.child()?;
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(child)? {
            let value = map.next_value_seed(child)?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Node, A::Error> {
        // serde_yaml reports `!tag value` as an enum. The content is still
        // walked (within budget) so that a bomb behind a tag is caught too.
        self.budget.charge(1)?;
        let child = self.child()?;
        let (_tag, variant): (Node, _) = data.variant_seed(child)?;
        de::VariantAccess::newtype_variant_seed(variant, child)?;
        Ok(Node::Tagged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Node {
        Node::Str(v.to_owned())
    }

    #[test]
    fn scalars_and_structures() {
        assert_eq!(parse(""), Ok(Node::Null));
        assert_eq!(parse("~"), Ok(Node::Null));
        assert_eq!(parse("5"), Ok(Node::Int(5)));
        assert_eq!(parse("-5"), Ok(Node::Int(-5)));
        assert_eq!(
            parse("18446744073709551616"),
            Ok(Node::Int(18_446_744_073_709_551_616))
        );
        assert_eq!(parse(&format!("2{}", "0".repeat(38))), Ok(Node::BigInt));
        assert!(matches!(parse(&"9".repeat(60)), Ok(Node::Float(_))));
        assert_eq!(parse("1.5"), Ok(Node::Float(1.5)));
        assert_eq!(parse("10Mi"), Ok(s("10Mi")));
        assert_eq!(parse("'5'"), Ok(s("5")));
        assert_eq!(parse("true"), Ok(Node::Bool(true)));
        assert_eq!(
            parse("a: [1, x]\nb: {c: ~}"),
            Ok(Node::Map(vec![
                (s("a"), Node::Seq(vec![Node::Int(1), s("x")])),
                (s("b"), Node::Map(vec![(s("c"), Node::Null)])),
            ]))
        );
        assert_eq!(
            parse("a: 1\na: 2"),
            Ok(Node::Map(vec![
                (s("a"), Node::Int(1)),
                (s("a"), Node::Int(2))
            ]))
        );
        assert_eq!(parse("!foo bar"), Ok(Node::Tagged));
        assert_eq!(parse("!!str 5"), Ok(s("5")));
    }

    #[test]
    fn bad_yaml_is_an_error() {
        for text in [
            "a: [",
            "a: b: c",
            "{",
            "---\na: 1\n---\nb: 2",
            "\t- x",
            "a: *nope",
        ] {
            assert!(matches!(parse(text), Err(Reason::Yaml { .. })), "{text:?}");
        }
    }

    #[test]
    fn moderate_aliases_work() {
        assert_eq!(
            parse("a: &x 5\nb: *x"),
            Ok(Node::Map(vec![
                (s("a"), Node::Int(5)),
                (s("b"), Node::Int(5))
            ]))
        );
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut doc = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
            .windows(2)
            .map(|w| (w[0], w[1]))
        {
            let refs = vec![format!("*{prev}"); 9].join(",");
            doc.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        assert!(doc.len() < 1024);
        assert!(matches!(parse(&doc), Err(Reason::Expansion { .. })));
    }

    #[test]
    fn long_string_aliased_many_times_is_refused() {
        let big = "x".repeat(30_000);
        let refs = vec!["*s"; 5_000].join(", ");
        let doc = format!("s: &s \"{big}\"\nt: [{refs}]\n");
        assert!(doc.len() < 64 << 10);
        assert!(matches!(parse(&doc), Err(Reason::Expansion { .. })));
    }

    #[test]
    fn deep_nesting_is_refused() {
        for depth in [17, 100, 10_000, 60_000] {
            let doc = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let got = parse(&doc);
            assert!(
                matches!(got, Err(Reason::TooDeep { .. }) | Err(Reason::Yaml { .. })),
                "{depth}: {got:?}"
            );
            let doc = "a:\n".to_owned()
                + &(1..depth.min(2000))
                    .map(|i| format!("{}a:\n", " ".repeat(i)))
                    .collect::<String>();
            assert!(parse(&doc).is_err(), "{depth}");
        }
        let ok = format!("{}{}", "[".repeat(15), "]".repeat(15));
        assert!(parse(&ok).is_ok());
        // Refused before parsing.
        let deep = format!("{}{}", "{a: ".repeat(65), "}".repeat(65));
        assert_eq!(
            parse(&deep),
            Err(Reason::TooDeep {
                max: MAX_FLOW_DEPTH
            })
        );
        // Brackets inside strings count, but balanced ones do not add up.
        let regexes = format!("a: [{}]", vec!["'[a-z]{4}'"; 1000].join(", "));
        assert!(parse(&regexes).is_ok());
    }
}
