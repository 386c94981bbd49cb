//! Tests of `framing`.

use super::*;
use crate::cri::timestamp_string;
use crate::event::{Assembler, LinePos, RawLines};
use proptest::prelude::*;

/// 2026-11-21T05:00:00Z.
const T0: Nanos = 1_795_237_200 * 1_000_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Ev {
    stream: Option<Stream>,
    content: String,
    raw: String,
    flags: Flags,
    end: End,
    restart: Mark,
    head: Mark,
    tail: Mark,
    open: [Option<Mark>; 2],
}

/// One stored line: (time offset in ms, stream 0/1 or 2 for malformed,
/// full, content).
type In = (i64, u8, bool, String);

fn stored(l: &In) -> String {
    let (ms, s, full, c) = l;
    if *s == 2 {
        return format!("garbage {c}\n");
    }
    format!(
        "{} {} {} {c}\n",
        timestamp_string(T0 + ms * 1_000_000),
        if *s == 0 { "stdout" } else { "stderr" },
        if *full { "F" } else { "P" }
    )
}

fn multiline(start: &str, max_lines: u32, flush_ms: i64) -> Framing {
    Framing::Multiline {
        start: Regex::new(start).unwrap(),
        max_lines,
        flush_after: flush_ms * 1_000_000,
    }
}

/// What a read does: feeds the lines from index `from`, calling the
/// follower's timer at `timers` (before line i, with a CRI time), then
/// finishes when `finish`.
struct Run<'a> {
    lines: &'a [In],
    framing: Framing,
    max: usize,
    raw: RawLines,
}

impl Run<'_> {
    fn go(&self, from: usize, start: Start, timers: &[(usize, Nanos)], finish: bool) -> Vec<Ev> {
        let mut asm =
            Assembler::new(self.max, self.raw).with_framing(Some(self.framing.clone()), start);
        let mut out = Vec::new();
        let mut collect = |e: &Event<'_>| {
            out.push(Ev {
                stream: e.stream,
                content: String::from_utf8_lossy(e.content).into_owned(),
                raw: String::from_utf8_lossy(e.raw).into_owned(),
                flags: e.flags,
                end: e.end,
                restart: e.restart,
                head: e.head,
                tail: e.tail,
                open: e.open,
            })
        };
        let mut off = 0u64;
        let mut at = Mark::default();
        for (i, l) in self.lines.iter().enumerate() {
            let text = stored(l);
            let len = text.len() as u64;
            if i >= from {
                for &(_, now) in timers.iter().filter(|t| t.0 == i) {
                    asm.expire(now, &mut collect);
                }
                let pos = LinePos {
                    file: 0,
                    start: off,
                    end: off + len,
                };
                asm.push(
                    &text.as_bytes()[..text.len() - 1],
                    text.as_bytes(),
                    pos,
                    &mut collect,
                );
            }
            off += len;
            at = Mark {
                file: 0,
                offset: off,
            };
        }
        for &(_, now) in timers.iter().filter(|t| t.0 == self.lines.len()) {
            asm.expire(now, &mut collect);
        }
        if finish {
            asm.finish(at, &mut collect);
        }
        out
    }

    fn line_at(&self, m: Mark) -> usize {
        let mut off = 0;
        for (i, l) in self.lines.iter().enumerate() {
            if off >= m.offset {
                return i;
            }
            off += stored(l).len() as u64;
        }
        self.lines.len()
    }
}

fn l(ms: i64, s: u8, c: &str) -> In {
    (ms, s, true, c.to_owned())
}

fn contents(evs: &[Ev]) -> Vec<(Option<Stream>, &str)> {
    evs.iter().map(|e| (e.stream, e.content.as_str())).collect()
}

#[test]
fn stack_traces_join_the_line_that_starts_them() {
    let lines = [
        l(0, 0, "E Exception: boom"),
        l(1, 0, "  at a"),
        l(2, 1, "W warning"),
        l(3, 0, "  at b"),
        (4, 0, false, "  at ".into()),
        (4, 0, true, "c".into()),
        l(5, 0, "I next"),
        l(6, 1, "  detail"),
    ];
    let run = Run {
        lines: &lines,
        framing: multiline(r"^[A-Z] ", 1000, 2000),
        max: 1 << 20,
        raw: RawLines::Keep,
    };
    let evs = run.go(0, Start::Fresh, &[], true);
    assert_eq!(
        contents(&evs),
        [
            (
                Some(Stream::Stdout),
                "E Exception: boom\n  at a\n  at b\n  at c"
            ),
            (Some(Stream::Stdout), "I next"),
            (Some(Stream::Stderr), "W warning\n  detail"),
        ]
    );
    // The raw form is every stored line of the event, the P line too.
    assert_eq!(evs[0].raw.lines().count(), 5);
    // Ended by the next start: piece 0 at that line; the rest at the
    // end of the attempt, in stream order.
    assert_eq!(evs[0].end.sub, 0);
    assert_eq!(evs[1].end.sub, FINISH_BASE + FINISH_SPAN - 1);
    assert_eq!(evs[2].end.sub, FINISH_BASE + 2 * FINISH_SPAN - 1);
    // Still open when the first was delivered: stderr's event.
    assert_eq!(
        evs[0].open[1],
        Some(Mark {
            file: 0,
            offset: stored(&lines[0]).len() as u64 + stored(&lines[1]).len() as u64
        })
    );
    assert!(
        evs[0].open[0].is_some(),
        "the line that ended it opens the next"
    );
    // Each event spans from its first line to the end of its own last
    // line, not to the end of the line that ended it: retention may
    // cut between the two.
    let end_of = |i: usize| -> u64 { lines[..=i].iter().map(|l| stored(l).len() as u64).sum() };
    let at = |offset| Mark { file: 0, offset };
    assert_eq!((evs[0].head, evs[0].tail), (at(0), at(end_of(5))));
    assert_eq!(evs[0].end.at, at(end_of(6)));
    assert_eq!((evs[1].head, evs[1].tail), (at(end_of(5)), at(end_of(6))));
    assert_eq!((evs[2].head, evs[2].tail), (at(end_of(1)), at(end_of(7))));
}

#[test]
fn max_lines_and_the_size_cap_cut_long_events() {
    let mut lines = vec![l(0, 0, "S start")];
    lines.extend((1..=7).map(|i| l(i, 0, &format!(" {i}"))));
    let run = Run {
        lines: &lines,
        framing: multiline("^S", 3, 2000),
        max: 1 << 20,
        raw: RawLines::Drop,
    };
    let evs = run.go(0, Start::Fresh, &[], true);
    assert_eq!(
        contents(&evs).iter().map(|c| c.1).collect::<Vec<_>>(),
        ["S start\n 1\n 2", " 3\n 4\n 5", " 6\n 7"]
    );
    // The third line completes the first event itself: piece 1.
    assert_eq!(evs[0].end.sub, 1);
    let run = Run { max: 12, ..run };
    let evs = run.go(0, Start::Fresh, &[], true);
    assert_eq!(
        contents(&evs).iter().map(|c| c.1).collect::<Vec<_>>(),
        ["S start\n 1", " 2\n 3\n 4", " 5\n 6\n 7"]
    );
    // Only the part cut for size says so.
    let cut: Vec<bool> = evs.iter().map(|e| e.flags.truncated).collect();
    assert_eq!(cut, [true, false, false]);
}

#[test]
fn a_pause_ends_an_event_and_a_timer_agrees_with_the_lines() {
    let lines = [
        l(0, 0, "S one"),
        l(100, 0, " more"),
        l(3000, 0, " late"),
        l(3100, 1, "S err"),
        l(9000, 0, "S two"),
    ];
    let run = Run {
        lines: &lines,
        framing: multiline("^S", 1000, 1000),
        max: 1 << 20,
        raw: RawLines::Drop,
    };
    let evs = run.go(0, Start::Fresh, &[], true);
    assert_eq!(
        contents(&evs),
        [
            (Some(Stream::Stdout), "S one\n more"),
            (Some(Stream::Stdout), " late"),
            (Some(Stream::Stderr), "S err"),
            (Some(Stream::Stdout), "S two"),
        ]
    );
    // Ended by the pause: at the end of its last line.
    let first_end = (stored(&lines[0]).len() + stored(&lines[1]).len()) as u64;
    assert_eq!(
        evs[0].end,
        End {
            at: Mark {
                file: 0,
                offset: first_end
            },
            sub: TIMEOUT_SUB
        }
    );
    // A follower's timer firing in the pauses delivers the same events
    // with the same positions, earlier; one firing too early does
    // nothing.
    let timers = [
        (2, T0 + 500 * 1_000_000),
        (2, T0 + 1200 * 1_000_000),
        (4, T0 + 5000 * 1_000_000),
    ];
    let timed = run.go(0, Start::Fresh, &timers, true);
    assert_eq!(timed, evs);
}

#[test]
fn a_timer_keeps_completion_order_across_streams() {
    // stderr's event is due first, but stdout's (earlier piece number
    // at the same point) is still open: the timer waits for it.
    let lines = [l(0, 1, "S err"), l(500, 0, "S out"), l(5000, 0, "S next")];
    let run = Run {
        lines: &lines,
        framing: multiline("^S", 1000, 1000),
        max: 1 << 20,
        raw: RawLines::Drop,
    };
    let timer = [(2, T0 + 1200 * 1_000_000)];
    let two = Run {
        lines: &lines[..2],
        framing: run.framing.clone(),
        ..run
    };
    assert_eq!(two.go(0, Start::Fresh, &timer, false), []);
    let both = [(2, T0 + 1600 * 1_000_000)];
    let evs = two.go(0, Start::Fresh, &both, false);
    assert_eq!(
        evs.iter().map(|e| e.end.sub).collect::<Vec<_>>(),
        [TIMEOUT_SUB, TIMEOUT_SUB + 1]
    );
    assert_eq!(
        run.go(0, Start::Fresh, &timer, true),
        run.go(0, Start::Fresh, &[], true)
    );
}

#[test]
fn bytes_delimiters_cut_inside_and_across_lines() {
    let lines = [
        l(0, 0, "a##b"),
        l(1, 0, "c##"),
        l(2, 1, "x"),
        l(3, 0, "d"),
        l(4, 0, "##e##f##"),
        l(5, 1, "y##"),
    ];
    let run = Run {
        lines: &lines,
        framing: Framing::Bytes(b"##".to_vec()),
        max: 1 << 20,
        raw: RawLines::Keep,
    };
    let evs = run.go(0, Start::Fresh, &[], true);
    assert_eq!(
        contents(&evs),
        [
            (Some(Stream::Stdout), "a"),
            (Some(Stream::Stdout), "b\nc"),
            (Some(Stream::Stdout), "d"),
            (Some(Stream::Stdout), "e"),
            (Some(Stream::Stdout), "f"),
            (Some(Stream::Stderr), "x\ny"),
        ]
    );
    // Each stored line is served once, with the event it ends in.
    let raws: Vec<usize> = evs.iter().map(|e| e.raw.lines().count()).collect();
    assert_eq!(raws, [0, 2, 1, 0, 1, 2]);
    // Pieces of one line: 1, 2, … in order.
    assert_eq!(
        evs[2..5].iter().map(|e| e.end.sub).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

/// The line that ends an event over the cap is not joined to what came
/// before it: that goes out alone, flagged truncated (found by fuzzing:
/// an event of 40 bytes under a cap of 32).
#[test]
fn a_bytes_event_over_the_cap_is_cut_before_the_line_that_ends_it() {
    let lines = [
        l(0, 0, "0123456789abcdef"),
        l(1, 0, "0123456789abcdefghijklm##next"),
    ];
    let run = Run {
        lines: &lines,
        framing: Framing::Bytes(b"##".to_vec()),
        max: 32,
        raw: RawLines::Keep,
    };
    let evs = run.go(0, Start::Fresh, &[], true);
    assert_eq!(
        contents(&evs),
        [
            (Some(Stream::Stdout), "0123456789abcdef"),
            (Some(Stream::Stdout), "0123456789abcdefghijklm"),
            (Some(Stream::Stdout), "next"),
        ]
    );
    assert!(evs[0].flags.truncated && !evs[1].flags.truncated);
    assert!(evs.iter().all(|e| e.content.len() <= 32));
}

fn arb_lines(bytes: bool) -> impl Strategy<Value = Vec<In>> {
    let content = if bytes {
        prop::sample::select(vec!["a", "b##", "##c", "d#", "#e", "##", "long text here"])
    } else {
        prop::sample::select(vec![
            "S start",
            " cont",
            " more text",
            "S",
            "x",
            " a longer line",
        ])
    };
    prop::collection::vec(
        (
            0i64..1500,
            prop::sample::select(vec![0u8, 0, 1, 1, 2]),
            prop::bool::weighted(0.8),
            content,
        ),
        0..40,
    )
    .prop_map(|v| {
        let mut t = 0;
        v.into_iter()
            .map(|(dt, s, full, c)| {
                t += dt;
                (t, s, full, c.to_owned())
            })
            .collect()
    })
}

fn framing_of(bytes: bool) -> Framing {
    if bytes {
        Framing::Bytes(b"##".to_vec())
    } else {
        multiline("^S", 3, 1000)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Resuming after any event with its cursor (restart point and
    /// open heads) delivers exactly the events after it.
    #[test]
    fn a_cursor_resumes_exactly(bytes: bool, lines in arb_lines(false), blines in arb_lines(true)) {
        let lines = if bytes { blines } else { lines };
        let run = Run { lines: &lines, framing: framing_of(bytes), max: 24, raw: RawLines::Keep };
        let all = run.go(0, Start::Fresh, &[], true);
        for w in all.windows(2) {
            prop_assert!(w[0].end < w[1].end, "completion order: {:?}", w);
        }
        for (i, e) in all.iter().enumerate() {
            prop_assert!(e.restart <= e.end.at);
            prop_assert!(e.content.len() <= run.max, "over the cap: {:?}", e);
            let skip = e.open.map(|h| h.unwrap_or(e.end.at));
            let from = run.line_at(e.restart);
            let again: Vec<Ev> = run
                .go(from, Start::Skip(skip), &[], true)
                .into_iter()
                .filter(|x| x.end > e.end)
                .collect();
            let strip = |v: &[Ev]| v.iter().map(|x| (x.stream, x.content.clone(), x.raw.clone(), x.flags, x.end)).collect::<Vec<_>>();
            prop_assert_eq!(strip(&again), strip(&all[i + 1..]), "after event {}", i);
        }
    }

    /// Read from anywhere with the state unknown, whatever is delivered
    /// is an event of the full read, whole.
    #[test]
    fn an_unknown_start_delivers_only_whole_events(bytes: bool, lines in arb_lines(false), blines in arb_lines(true), at in 0usize..40) {
        let mut lines = if bytes { blines } else { lines };
        // Start where no P chain is open.
        for l in &mut lines {
            l.2 = true;
        }
        let run = Run { lines: &lines, framing: framing_of(bytes), max: 1 << 20, raw: RawLines::Drop };
        let all = run.go(0, Start::Fresh, &[], true);
        let from = at.min(lines.len());
        for e in run.go(from, Start::Unknown, &[], true) {
            let same = all.iter().find(|x| x.end == e.end);
            prop_assert_eq!(same.map(|x| (&x.content, x.stream)), Some((&e.content, e.stream)));
        }
    }
}
