//! Rendering events as `text`, `cri`, `json` (NDJSON) or protobuf output
//! bytes.
//!
//! Pure: events and context in, bytes appended to a buffer out.

use base64::Engine as _;
use podlog_proto::podlog as pb;
use prost::Message as _;

use crate::cri;
use crate::event::Event;

/// The output format of `GET /logs/...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Event content, one event a line (like `kubectl logs`).
    Text,
    /// The stored CRI lines as they are.
    Cri,
    /// NDJSON: one object per event with its cursor and context.
    Json,
    /// `podlog.v1.Event` messages, each as one `events` entry of a
    /// `ReadResponse`: any run of them is a `ReadResponse` (the gRPC API).
    Proto,
}

impl Format {
    /// The name used in metrics and `format=`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Cri => "cri",
            Self::Json => "json",
            Self::Proto => "protobuf",
        }
    }

    /// Events carry their cursor and context, and are never cut: `limitBytes`
    /// ends before the event that does not fit.
    pub fn structured(self) -> bool {
        matches!(self, Self::Json | Self::Proto)
    }
}

/// The identity of the container attempt being read, rendered once.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
    pub attempt: u32,
    /// What the runtime adds; empty or `None` when it is not known.
    pub node: String,
    pub container_id: Option<String>,
    pub image: Option<String>,
    /// Only when asked for (`labels=true`, `annotations=true`): they can be
    /// large and are the same on every event.
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
    /// The `annotations` of the container's log policy: context the pod
    /// hands to log consumers (a fluentd configuration, a team, an index),
    /// on every event; empty when the policy has none.
    pub policy_annotations: std::collections::BTreeMap<String, String>,
}

// === impl Context ===

impl Context {
    /// The JSON members every event of this attempt carries, with a leading
    /// comma: `,"namespace":…,"attempt":N`.
    pub fn json_members(&self) -> Vec<u8> {
        let mut v = Vec::new();
        for (k, val) in [
            ("namespace", &self.namespace),
            ("pod", &self.pod),
            ("uid", &self.uid),
            ("container", &self.container),
        ] {
            v.extend_from_slice(b",\"");
            v.extend_from_slice(k.as_bytes());
            v.extend_from_slice(b"\":");
            write_json_str(&mut v, val);
        }
        v.extend_from_slice(format!(",\"attempt\":{}", self.attempt).as_bytes());
        let optional = [
            ("node", Some(&self.node).filter(|n| !n.is_empty())),
            ("containerId", self.container_id.as_ref()),
            ("image", self.image.as_ref()),
        ];
        for (k, val) in optional {
            if let Some(val) = val {
                v.extend_from_slice(b",\"");
                v.extend_from_slice(k.as_bytes());
                v.extend_from_slice(b"\":");
                write_json_str(&mut v, val);
            }
        }
        let policy = Some(&self.policy_annotations).filter(|m| !m.is_empty());
        for (k, map) in [
            ("labels", self.labels.as_ref()),
            ("annotations", self.annotations.as_ref()),
            ("policyAnnotations", policy),
        ] {
            if let Some(map) = map {
                v.extend_from_slice(b",\"");
                v.extend_from_slice(k.as_bytes());
                v.extend_from_slice(b"\":{");
                for (i, (mk, mv)) in map.iter().enumerate() {
                    if i > 0 {
                        v.push(b',');
                    }
                    write_json_str(&mut v, mk);
                    v.push(b':');
                    write_json_str(&mut v, mv);
                }
                v.push(b'}');
            }
        }
        v
    }

    /// The context fields of a `podlog.v1.Event`, encoded: appended to each
    /// event's own fields, they make the whole message (protobuf merges
    /// concatenated encodings).
    pub fn proto_members(&self) -> Vec<u8> {
        let map = |m: &Option<std::collections::BTreeMap<String, String>>| {
            m.iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        pb::Event {
            namespace: self.namespace.clone(),
            pod: self.pod.clone(),
            uid: self.uid.clone(),
            container: self.container.clone(),
            attempt: self.attempt,
            container_id: self.container_id.clone().unwrap_or_default(),
            image: self.image.clone().unwrap_or_default(),
            node: self.node.clone(),
            labels: map(&self.labels),
            annotations: map(&self.annotations),
            policy_annotations: self
                .policy_annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..pb::Event::default()
        }
        .encode_to_vec()
    }

    /// The members of this attempt's events in `format`: see
    /// [`Context::json_members`] and [`Context::proto_members`].
    pub fn members(&self, format: Format) -> Vec<u8> {
        match format {
            Format::Json => self.json_members(),
            Format::Proto => self.proto_members(),
            Format::Text | Format::Cri => Vec::new(),
        }
    }

    /// The cursor key of this attempt.
    pub fn key(&self) -> u64 {
        crate::cursor::attempt_key(
            &self.namespace,
            &self.pod,
            &self.uid,
            &self.container,
            self.attempt,
        )
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\' || c == 0x7f
}

/// True when any byte of the word needs escaping (SWAR: eight bytes per
/// step, so plain log text is scanned at memory speed).
fn word_needs_escape(w: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let below_space = w.wrapping_sub(LO * 0x20) & !w & HI;
    (below_space
        | has_zero(w ^ (LO * u64::from(b'"')))
        | has_zero(w ^ (LO * u64::from(b'\\')))
        | has_zero(w ^ (LO * 0x7f)))
        != 0
}

/// The index of the first byte at or after `i` that needs escaping, or
/// `b.len()`.
fn next_escape(b: &[u8], mut i: usize) -> usize {
    while i + 8 <= b.len() {
        let w = u64::from_le_bytes(b[i..i + 8].try_into().expect("a slice of 8 bytes"));
        if word_needs_escape(w) {
            break;
        }
        i += 8;
    }
    while i < b.len() && !needs_escape(b[i]) {
        i += 1;
    }
    i
}

/// Appends `s` as a JSON string literal.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    loop {
        let i = next_escape(b, start);
        out.extend_from_slice(&b[start..i]);
        if i == b.len() {
            break;
        }
        let c = b[i];
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 0xf)]);
            }
        }
        start = i + 1;
    }
    out.push(b'"');
}

/// The field number of `ReadResponse.events`.
const EVENTS_FIELD: u32 = 1;

/// Appends one event in `format`. `cursor` and `members` (see
/// [`Context::members`]) are only used by the structured formats.
pub fn render(
    out: &mut Vec<u8>,
    ev: &Event<'_>,
    format: Format,
    timestamps: bool,
    cursor: &[u8],
    members: &[u8],
) {
    match format {
        Format::Text => {
            if timestamps {
                // A malformed line before any valid one has no time: no prefix.
                if let Some(t) = ev.time {
                    cri::format_timestamp(t, out);
                    out.push(b' ');
                }
            }
            out.extend_from_slice(ev.content);
            out.push(b'\n');
        }
        Format::Cri => out.extend_from_slice(ev.raw),
        Format::Json => json(out, ev, cursor, members),
        Format::Proto => proto(out, ev, cursor, members),
    }
}

/// A `podlog.v1.Event` as one `ReadResponse.events` entry: the key, the
/// length, the event's own fields, then the attempt's.
fn proto(out: &mut Vec<u8>, ev: &Event<'_>, cursor: &[u8], members: &[u8]) {
    let mut time = Vec::new();
    if let Some(t) = ev.time {
        cri::format_timestamp(t, &mut time);
    }
    let own = pb::Event {
        time: String::from_utf8(time).unwrap_or_default(),
        stream: ev.stream.map_or("unknown", |s| s.as_str()).to_owned(),
        log: ev.content.to_vec(),
        cursor: String::from_utf8_lossy(cursor).into_owned(),
        partial: ev.flags.partial,
        truncated: ev.flags.truncated,
        malformed: ev.flags.malformed,
        ..pb::Event::default()
    };
    prost::encoding::encode_key(
        EVENTS_FIELD,
        prost::encoding::WireType::LengthDelimited,
        out,
    );
    prost::encoding::encode_varint((own.encoded_len() + members.len()) as u64, out);
    own.encode_raw(out);
    out.extend_from_slice(members);
}

/// One NDJSON object and its newline.
fn json(out: &mut Vec<u8>, ev: &Event<'_>, cursor: &[u8], members: &[u8]) {
    out.extend_from_slice(b"{\"time\":");
    match ev.time {
        Some(t) => {
            out.push(b'"');
            cri::format_timestamp(t, out);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(ev.stream.map_or("unknown", |s| s.as_str()).as_bytes());
    out.extend_from_slice(b"\",\"log\":");
    let valid = std::str::from_utf8(ev.content);
    match valid {
        Ok(s) => write_json_str(out, s),
        Err(_) => write_json_str(out, &String::from_utf8_lossy(ev.content)),
    }
    if valid.is_err() {
        out.extend_from_slice(b",\"log_base64\":\"");
        let start = out.len();
        let n = base64::encoded_len(ev.content.len(), true).unwrap_or(0);
        out.resize(start + n, 0);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(ev.content, &mut out[start..])
            .unwrap_or(0);
        out.truncate(start + written);
        out.push(b'"');
    }
    out.extend_from_slice(b",\"cursor\":\"");
    out.extend_from_slice(cursor);
    out.push(b'"');
    out.extend_from_slice(members);
    if ev.flags.partial {
        out.extend_from_slice(b",\"partial\":true");
    }
    if ev.flags.truncated {
        out.extend_from_slice(b",\"truncated\":true");
    }
    if ev.flags.malformed {
        out.extend_from_slice(b",\"malformed\":true");
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cri::Stream;
    use crate::event::{End, Flags, Mark};

    /// A stderr event at 1.5 s, with `content` and the stored line `RAW`.
    pub(crate) fn ev(content: &[u8]) -> Event<'_> {
        let m = Mark { file: 0, offset: 1 };
        Event {
            time: Some(1_500_000_000),
            stream: Some(Stream::Stderr),
            content,
            raw: b"RAW\n",
            flags: Flags::default(),
            end: End { at: m, sub: 0 },
            restart: m,
            head: m,
            tail: m,
            open: [None; 2],
            framed: false,
        }
    }

    fn json(content: &[u8]) -> serde_json::Value {
        let mut out = Vec::new();
        render(
            &mut out,
            &ev(content),
            Format::Json,
            false,
            b"C",
            b",\"attempt\":3",
        );
        assert_eq!(out.last(), Some(&b'\n'));
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn json_escapes_and_keeps_bytes() {
        let v = json(b"a\"b\\c\td\x01\x7f");
        assert_eq!(v["log"], "a\"b\\c\td\u{1}\u{7f}");
        assert_eq!(v["time"], "1970-01-01T00:00:01.500000000Z");
        assert_eq!(v["stream"], "stderr");
        assert_eq!(v["cursor"], "C");
        assert_eq!(v["attempt"], 3);
        assert!(v.get("log_base64").is_none());
        let v = json(b"ok\xff\xfe");
        assert_eq!(v["log"], "ok\u{fffd}\u{fffd}");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(v["log_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(raw, b"ok\xff\xfe");
    }

    proptest::proptest! {
        #[test]
        fn json_strings_round_trip(s in "\\PC*|[\\x00-\\x7f]{0,40}") {
            let mut out = Vec::new();
            write_json_str(&mut out, &s);
            let back: String = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(back, s);
        }
    }

    #[test]
    fn text_and_cri() {
        let mut out = Vec::new();
        render(&mut out, &ev(b"hello"), Format::Text, true, b"", b"");
        assert_eq!(out, b"1970-01-01T00:00:01.500000000Z hello\n");
        out.clear();
        render(&mut out, &ev(b"hello"), Format::Cri, true, b"", b"");
        assert_eq!(out, b"RAW\n");
    }
}
