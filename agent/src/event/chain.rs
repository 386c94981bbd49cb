//! The `P`/`F` chain state of a container's two streams.
//!
//! The runtime writes a long line as `P` chunks ended by an `F` chunk, and
//! stdout and stderr chains interleave. A chain is *open* in a stream from
//! its first `P` line until its `F`; where it began is its *head*. Assembly
//! (which joins the chunks), the reader's sync points and raw pass (which
//! must not start or stop inside a chain) and retention (which cuts files
//! only where no chain is open) all follow this one state.
//!
//! Pure: lines in, state out. `P` is the position type a caller knows
//! lines by (a [`Mark`](super::Mark), a file offset, or `()` where only
//! open-or-not matters).

use crate::cri::{self, CriLine, Stream, Tag};

/// Per stream (stdout, stderr), the head of the chain open in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Chains<P> {
    heads: [Option<P>; 2],
}

impl<P> Default for Chains<P> {
    /// No chain open.
    fn default() -> Self {
        Self {
            heads: [None, None],
        }
    }
}

impl Chains<()> {
    /// The state just after `line`, judged by that line alone: the last
    /// line of a stream decides whether a chain of that stream is open
    /// after it. `None` for a line that is not valid CRI.
    pub fn after(line: &[u8]) -> Option<(Stream, bool)> {
        let l = cri::parse_line(line).ok()?;
        Some((l.stream, l.tag == Tag::Partial))
    }
}

impl<P: Copy + Ord> Chains<P> {
    /// Advances past one line of `stream` that starts at `at`: a `P` line
    /// opens a chain there (or continues the open one), an `F` line ends it.
    pub fn line(&mut self, stream: Stream, tag: Tag, at: P) {
        match tag {
            Tag::Partial => {
                self.open_at(stream, at);
            }
            Tag::Full => self.close(stream),
        }
    }

    /// Parses `line` (without its `\n`) and advances past it; a line that
    /// is not valid CRI changes nothing and is `None`.
    pub fn observe<'l>(&mut self, line: &'l [u8], at: P) -> Option<CriLine<'l>> {
        let l = cri::parse_line(line).ok()?;
        self.line(l.stream, l.tag, at);
        Some(l)
    }

    /// Opens a chain of `stream` at `at`, unless one is open; returns its
    /// head.
    pub fn open_at(&mut self, stream: Stream, at: P) -> P {
        *self.heads[stream.index()].get_or_insert(at)
    }

    /// Ends the chain of `stream`, if one is open.
    pub fn close(&mut self, stream: Stream) {
        self.heads[stream.index()] = None;
    }

    /// Per stream, the head of its open chain.
    pub fn heads(&self) -> [Option<P>; 2] {
        self.heads
    }

    /// The head of the chain open in `stream`.
    pub fn head(&self, stream: Stream) -> Option<P> {
        self.heads[stream.index()]
    }

    /// The oldest head of an open chain.
    pub fn oldest_head(&self) -> Option<P> {
        self.heads.iter().flatten().min().copied()
    }

    /// Per stream, whether a chain is open.
    pub fn open(&self) -> [bool; 2] {
        self.heads.map(|h| h.is_some())
    }

    /// True while some chain waits for its `F`.
    pub fn any_open(&self) -> bool {
        self.heads.iter().any(Option::is_some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(u64, &str)> {
        let mut at = 0;
        text.lines()
            .map(|l| {
                let here = at;
                at += l.len() as u64 + 1;
                (here, l)
            })
            .collect()
    }

    #[test]
    fn heads_follow_chains_per_stream() {
        let t = "2026-11-21T05:00:00Z";
        let text = format!(
            "{t} stdout P a\n{t} stderr P b\n{t} stdout P c\n{t} stdout F d\nnot cri\n{t} stderr F e\n"
        );
        let mut c = Chains::default();
        let mut seen = Vec::new();
        for (at, l) in lines(&text) {
            c.observe(l.as_bytes(), at);
            seen.push((c.heads(), c.oldest_head(), c.any_open()));
        }
        let b = text.find("\n").unwrap() as u64 + 1;
        assert_eq!(seen[0], ([Some(0), None], Some(0), true));
        assert_eq!(seen[1], ([Some(0), Some(b)], Some(0), true));
        // A second P keeps the head where the chain began.
        assert_eq!(seen[2], ([Some(0), Some(b)], Some(0), true));
        assert_eq!(seen[3], ([None, Some(b)], Some(b), true));
        // A malformed line changes nothing.
        assert_eq!(seen[4], seen[3]);
        assert_eq!(seen[5], ([None, None], None, false));
        assert_eq!(c.open(), [false, false]);
    }

    #[test]
    fn open_state_without_positions() {
        let mut c = Chains::default();
        c.open_at(Stream::Stderr, ());
        assert_eq!(c.open(), [false, true]);
        c.line(Stream::Stderr, Tag::Full, ());
        c.line(Stream::Stdout, Tag::Partial, ());
        assert_eq!(c.open(), [true, false]);
        let t = "2026-11-21T05:00:00Z";
        let p = format!("{t} stderr P x");
        assert_eq!(Chains::after(p.as_bytes()), Some((Stream::Stderr, true)));
        assert_eq!(Chains::after(b"junk"), None);
    }
}
