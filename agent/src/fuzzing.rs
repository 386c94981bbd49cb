//! The entry points of the fuzz targets (`fuzz/`, `cargo +nightly fuzz`):
//! each takes arbitrary bytes, runs one decoder or parser of input podlogd
//! does not control (log lines, query strings, cursors, pod annotations,
//! journal records), and checks what must hold whatever the input, beyond
//! not panicking. Not an API.

use crate::cri;
use crate::cursor::Cursor;
use crate::event::framing::{Framing, Start};
use crate::event::{Assembler, LinePos, RawLines};

/// A CRI line: a line that decodes keeps its timestamp at its start, its
/// content is a suffix of it, and the timestamp renders and parses back.
pub fn cri_line(data: &[u8]) {
    let Ok(l) = cri::parse_line(data) else {
        return;
    };
    assert_eq!(cri::line_timestamp(data), Some(l.time));
    assert!(data.ends_with(l.content));
    let mut s = Vec::new();
    cri::format_timestamp(l.time, &mut s);
    assert_eq!(cri::parse_timestamp(&s), Some(l.time), "{s:?}");
}

/// The event assembler with framing. The input is a policy (YAML, as the
/// `podlog.dev/policy` annotation gives it) up to a NUL, two bytes of
/// `maxEventBytes` (16 B to 64 KiB), then log lines. Whatever they are, no
/// event is longer than the cap, and the events hold no more content than
/// the lines did.
pub fn assemble(data: &[u8]) {
    let (policy, rest) = match memchr::memchr(0, data) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b""[..], data),
    };
    let Some((cap, lines)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let max = usize::from(u16::from_le_bytes(*cap)).max(16);
    let policy = String::from_utf8_lossy(policy);
    let resolved = podlog_policy::PodPolicy::from_annotations([("podlog.dev/policy", policy)])
        .resolve(&podlog_policy::PolicySpec::default(), "c");
    let framing = Framing::from_policy(&resolved.effective.delimiter);
    let mut asm = Assembler::new(max, RawLines::Keep).with_framing(framing, Start::Fresh);
    let mut content = 0usize;
    let mut emit = |e: &crate::event::Event<'_>| {
        assert!(e.content.len() <= max, "{} > {max}", e.content.len());
        content += e.content.len();
    };
    let mut at = 0u64;
    for line in lines.split(|&b| b == b'\n') {
        let end = at + line.len() as u64 + 1;
        let pos = LinePos {
            file: 0,
            start: at,
            end,
        };
        asm.push(line, line, pos, &mut emit);
        at = end;
    }
    asm.finish(
        crate::event::Mark {
            file: 0,
            offset: at,
        },
        &mut emit,
    );
    assert!(content <= lines.len(), "{content} > {}", lines.len());
}

/// A query string of `/logs/...` and of `/logs`: refused or parsed, the
/// parsed parameters consistent.
pub fn query(data: &[u8]) {
    let q = String::from_utf8_lossy(data);
    if let Ok(p) = crate::serve::query::parse_log_params(&q) {
        assert!(!(p.since_seconds.is_some() && p.since_time.is_some()));
        assert!(p.limit_bytes.is_none_or(|n| n >= 1));
    }
    let _ = crate::serve::query::parse_logs_query(&q);
}

/// A cursor: what decodes encodes to a cursor that decodes the same, and
/// no cursor of one attempt is taken for another's.
pub fn cursor(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let Some(key) = Cursor::peek_key(&s) else {
        return;
    };
    let c = Cursor::decode(&s, key).expect("a cursor peek_key reads decodes");
    assert_eq!(Cursor::decode(&c.encode(), key), Ok(c));
    assert!(Cursor::decode(&s, key ^ 1).is_err());
}

/// Pod annotations and the node's policy YAML: parsed or refused with
/// reasons, never a panic; what resolves has values in range.
pub fn policy(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    // Annotations: `key=value` lines.
    let annotations = text.lines().filter_map(|l| l.split_once('='));
    let resolved = podlog_policy::PodPolicy::from_annotations(annotations)
        .resolve(&podlog_policy::PolicySpec::default(), "app");
    assert!(resolved.effective.max_event_bytes >= 1);
    if let Ok(spec) = serde_yaml::from_str::<podlog_policy::PolicySpec>(&text) {
        let _ = podlog_policy::PodPolicy::from_annotations(std::iter::empty::<(&str, &str)>())
            .resolve(&spec, "app");
    }
}

/// A journal record as read back from disk: refused as corrupt, or an
/// intent whose names are plain file names in a container's directory.
pub fn journal(data: &[u8]) {
    if let Ok((_, intent, _)) = crate::lifecycle::journal::decode_record(data) {
        for n in intent.names() {
            assert!(
                !n.is_empty() && !n.contains('/') && n != "." && n != "..",
                "{n:?}"
            );
        }
        assert_eq!(intent.dir().len(), 2);
    }
}
