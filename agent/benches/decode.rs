//! Decoding throughput: CRI line parsing, event assembly and output rendering
//! over a deterministic, realistic buffer of CRI lines.
//!
//! Each input is about 8 MiB of containerd-style lines: access-log text of
//! 80-300 bytes, about 10% on stderr, and increasing RFC 3339 timestamps
//! with Go's trailing-zero trimming. In the `mixed` input about 1% of the
//! lines are long lines of 40-100 KiB split in 16 KiB `P` chunks, with the
//! other stream's lines interleaved between the chunks; the `short` input
//! has no long lines. Every bench reports throughput in bytes of the CRI
//! input, so the figures compare directly with each other and with
//! `bench/compare.sh`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use podlog_agent::cri::{self, Nanos, Stream};
use podlog_agent::testing::{
    render, Assembler, Context, Cursor, End, Event, FilePoint, Flags, Format, LinePos, Mark,
    RawLines,
};

/// Size of the generated input, in bytes.
const INPUT_BYTES: usize = 8 << 20;
/// containerd's default chunk size for long lines.
const CHUNK: usize = 16 << 10;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    /// True with probability `per_10k` / 10000.
    fn chance(&mut self, per_10k: u64) -> bool {
        self.next() % 10_000 < per_10k
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Appends a timestamp the way containerd writes it (Go's RFC3339Nano:
/// trailing zeros of the fraction trimmed).
fn push_time(out: &mut Vec<u8>, t: Nanos) {
    let start = out.len();
    cri::format_timestamp(t, out);
    out.pop(); // 'Z'
    while out.last() == Some(&b'0') {
        out.pop();
    }
    if out.last() == Some(&b'.') {
        out.pop();
    }
    debug_assert!(out.len() > start);
    out.push(b'Z');
}

fn push_line(out: &mut Vec<u8>, t: Nanos, stream: Stream, partial: bool, content: &[u8]) {
    push_time(out, t);
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
}

/// One access-log-like line of roughly 80-300 bytes.
fn access_line(rng: &mut XorShift, out: &mut Vec<u8>) {
    const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];
    const PATHS: &[&str] = &[
        "/",
        "/healthz",
        "/api/v1/items",
        "/api/v1/orders",
        "/static/js/app.bundle.js",
        "/api/v2/users/profile/settings",
        "/metrics",
    ];
    const AGENTS: &[&str] = &[
        "curl/8.5.0",
        "kube-probe/1.31",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        "Go-http-client/1.1",
        "python-requests/2.32.3",
    ];
    const STATUS: &[&str] = &[
        "200", "200", "200", "200", "201", "204", "304", "404", "500",
    ];
    let target = rng.range(80, 300) as usize;
    let start = out.len();
    let line = format!(
        "10.{}.{}.{} - - [21/Nov/2026:05:26:{:02} +0000] \"{} {}?id={}&page={} HTTP/1.1\" {} {} \"-\" \"{}\" rt={}.{:03}",
        rng.range(0, 255),
        rng.range(0, 255),
        rng.range(1, 255),
        rng.range(0, 60),
        rng.pick(METHODS),
        rng.pick(PATHS),
        rng.range(1, 1_000_000),
        rng.range(1, 50),
        rng.pick(STATUS),
        rng.range(0, 100_000),
        rng.pick(AGENTS),
        rng.range(0, 3),
        rng.range(0, 1000),
    );
    out.extend_from_slice(line.as_bytes());
    // Pad or cut to the target length, keeping it ASCII.
    while out.len() - start < target {
        out.extend_from_slice(b" trace=4bf92f3577b34da6a3ce929d0e0e4736");
    }
    out.truncate(start + target);
}

/// The generated input: the CRI bytes and the line ranges (without `\n`).
struct Input {
    data: Vec<u8>,
    lines: Vec<(usize, usize)>,
}

/// Generates the input; `long_per_10k` lines in 10000 are long lines.
fn generate(long_per_10k: u64) -> Input {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut data = Vec::with_capacity(INPUT_BYTES + (128 << 10));
    let mut t: Nanos = 1_795_238_810_936_241_998; // 2026-11-21T05:26:50.936241998Z
    let mut content = Vec::with_capacity(128 << 10);
    while data.len() < INPUT_BYTES {
        t += rng.range(1_000, 2_000_000) as i64;
        let stream = if rng.chance(1000) {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        if rng.chance(long_per_10k) {
            // A long line: 40-100 KiB of JSON-ish payload in 16 KiB chunks,
            // with the other stream's short lines between the chunks.
            let len = rng.range(40 << 10, 100 << 10) as usize;
            content.clear();
            content.extend_from_slice(b"{\"level\":\"debug\",\"msg\":\"dump\",\"payload\":\"");
            while content.len() < len - 2 {
                let c = b"abcdefghijklmnopqrstuvwxyz0123456789"[(rng.next() % 36) as usize];
                content.push(c);
            }
            content.extend_from_slice(b"\"}");
            let other = match stream {
                Stream::Stdout => Stream::Stderr,
                Stream::Stderr => Stream::Stdout,
            };
            let mut chunks = content.chunks(CHUNK).peekable();
            while let Some(c) = chunks.next() {
                let last = chunks.peek().is_none();
                push_line(&mut data, t, stream, !last, c);
                if !last && rng.chance(5000) {
                    t += rng.range(1_000, 100_000) as i64;
                    let mut short = Vec::new();
                    access_line(&mut rng, &mut short);
                    push_line(&mut data, t, other, false, &short);
                }
                t += rng.range(1_000, 50_000) as i64;
            }
        } else {
            content.clear();
            access_line(&mut rng, &mut content);
            push_line(&mut data, t, stream, false, &content);
        }
    }
    let mut lines = Vec::new();
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', &data) {
        lines.push((start, nl));
        start = nl + 1;
    }
    Input { data, lines }
}

/// Feeds every line to a fresh assembler; `emit` gets each event.
fn assemble<F: FnMut(&Event<'_>)>(input: &Input, raw: RawLines, mut emit: F) {
    let mut asm = Assembler::new(1 << 20, raw);
    for &(s, e) in &input.lines {
        let pos = LinePos {
            file: 0,
            start: s as u64,
            end: e as u64 + 1,
        };
        asm.push(&input.data[s..e], &input.data[s..=e], pos, &mut emit);
    }
}

/// An assembled event, owned, so rendering can be measured on its own.
struct OwnedEvent {
    time: Option<Nanos>,
    stream: Option<Stream>,
    content: Vec<u8>,
    raw: Vec<u8>,
    flags: Flags,
    end: End,
    restart: Mark,
}

impl OwnedEvent {
    fn as_event(&self) -> Event<'_> {
        Event {
            time: self.time,
            stream: self.stream,
            content: &self.content,
            raw: &self.raw,
            flags: self.flags,
            end: self.end,
            restart: self.restart,
            head: self.restart,
            tail: self.end.at,
            open: [None; 2],
            framed: false,
        }
    }
}

fn owned_events(input: &Input) -> Vec<OwnedEvent> {
    let mut evs = Vec::new();
    assemble(input, RawLines::Keep, |e| {
        evs.push(OwnedEvent {
            time: e.time,
            stream: e.stream,
            content: e.content.to_vec(),
            raw: e.raw.to_vec(),
            flags: e.flags,
            end: e.end,
            restart: e.restart,
        })
    });
    evs
}

fn context() -> Context {
    Context {
        namespace: "default".into(),
        pod: "bench".into(),
        uid: "00000000-0000-0000-0000-000000000001".into(),
        container: "app".into(),
        attempt: 0,
        ..Context::default()
    }
}

/// Renders every event into a reused buffer, flushed (cleared) at 128 KiB
/// as the reader does. With `cursors`, each event's cursor is encoded as
/// the reader does for `json`.
fn render_all(
    evs: &[OwnedEvent],
    format: Format,
    cursors: bool,
    members: &[u8],
    key: u64,
) -> usize {
    let mut out = Vec::with_capacity(256 << 10);
    let mut total = 0;
    for ev in evs {
        let cursor = if cursors {
            Cursor {
                key,
                end: FilePoint {
                    fingerprint: 0x1234_5678_9abc_def0,
                    offset: ev.end.at.offset,
                },
                sub: ev.end.sub,
                restart: FilePoint {
                    fingerprint: 0x1234_5678_9abc_def0,
                    offset: ev.restart.offset,
                },
                open: None,
            }
            .encode()
        } else {
            String::new()
        };
        render(
            &mut out,
            &ev.as_event(),
            format,
            false,
            cursor.as_bytes(),
            members,
        );
        if out.len() >= 128 << 10 {
            total += out.len();
            black_box(&out);
            out.clear();
        }
    }
    total + out.len()
}

/// The two inputs: `mixed` (about 1% of lines are long lines in 16 KiB
/// chunks, which make up most of its bytes) and `short` (access-log lines
/// only, where the per-line cost dominates).
fn inputs() -> [(&'static str, Input); 2] {
    [("mixed", generate(100)), ("short", generate(0))]
}

fn group<'c>(
    c: &'c mut Criterion,
    name: &str,
    bytes: u64,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(bytes))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g
}

fn benches(c: &mut Criterion) {
    let ctx = context();
    let members = ctx.json_members();
    let key = ctx.key();
    for (name, input) in inputs() {
        let bytes = input.data.len() as u64;

        let mut g = group(c, "decode", bytes);
        g.bench_function(BenchmarkId::new("parse_line", name), |b| {
            b.iter(|| {
                let mut n = 0usize;
                for &(s, e) in &input.lines {
                    if let Ok(l) = cri::parse_line(black_box(&input.data[s..e])) {
                        n += l.content.len();
                    }
                }
                black_box(n)
            })
        });
        g.bench_function(BenchmarkId::new("assemble", name), |b| {
            b.iter(|| {
                let mut n = 0usize;
                assemble(&input, RawLines::Drop, |e| n += e.content.len());
                black_box(n)
            })
        });
        g.bench_function(BenchmarkId::new("assemble_keep_raw", name), |b| {
            b.iter(|| {
                let mut n = 0usize;
                assemble(&input, RawLines::Keep, |e| n += e.raw.len());
                black_box(n)
            })
        });
        g.finish();

        let evs = owned_events(&input);
        let mut g = group(c, "render", bytes);
        for (fname, format, cursors) in [
            ("text", Format::Text, false),
            ("cri", Format::Cri, false),
            ("json", Format::Json, true),
        ] {
            g.bench_function(BenchmarkId::new(fname, name), |b| {
                b.iter(|| render_all(&evs, format, cursors, &members, key))
            });
        }
        g.finish();
        drop(evs);

        let mut g = group(c, "pipeline", bytes);
        g.bench_function(BenchmarkId::new("assemble_render_text", name), |b| {
            let mut out = Vec::with_capacity(256 << 10);
            b.iter(|| {
                let mut total = 0usize;
                assemble(&input, RawLines::Drop, |e| {
                    render(&mut out, e, Format::Text, false, b"", &members);
                    if out.len() >= 128 << 10 {
                        total += out.len();
                        black_box(&out);
                        out.clear();
                    }
                });
                total += out.len();
                out.clear();
                black_box(total)
            })
        });
        g.finish();
    }
}

criterion_group!(decode, benches);
criterion_main!(decode);
