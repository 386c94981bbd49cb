//! The CRI log line format: a pure decoder over byte slices.
//!
//! A line is `<timestamp> <stream> <tag> <content>` without its `\n`. The
//! timestamp is RFC 3339 with a variable number of fraction digits and either
//! `Z` (containerd) or a zone offset (CRI-O); it is converted to nanoseconds
//! since the Unix epoch in UTC so that lines of both runtimes compare. The tag
//! is `F` or `P`, optionally followed by `:`-separated fields that are ignored.
//!
//! This module never reads a file; [`crate::event::assemble`] joins lines into events.

/// Nanoseconds since the Unix epoch, UTC.
pub type Nanos = i64;

/// Which output stream of the container wrote a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Whether a line ends its event (`F`) or continues in the next line of the
/// same stream (`P`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    Full,
    Partial,
}

/// One decoded CRI line, borrowing its content from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CriLine<'a> {
    pub time: Nanos,
    pub stream: Stream,
    pub tag: Tag,
    pub content: &'a [u8],
}

/// Why a line is not a valid CRI line. The line is still delivered, flagged
/// `malformed`; this says what was wrong for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CriLogError {
    #[error("bad timestamp")]
    Timestamp,
    #[error("unknown stream")]
    Stream,
    #[error("missing or unknown tag")]
    Tag,
}

// === impl Stream ===

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// Index for per-stream state (0 = stdout, 1 = stderr).
    pub fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// Decodes one line (without its trailing `\n`).
///
/// # Errors
///
/// Returns which part of the line is not valid CRI.
pub fn parse_line(line: &[u8]) -> Result<CriLine<'_>, CriLogError> {
    let sp = memchr::memchr(b' ', line).ok_or(CriLogError::Timestamp)?;
    let time = parse_timestamp(&line[..sp]).ok_or(CriLogError::Timestamp)?;
    let rest = &line[sp + 1..];
    let (stream, rest) = if let Some(r) = rest.strip_prefix(b"stdout ") {
        (Stream::Stdout, r)
    } else if let Some(r) = rest.strip_prefix(b"stderr ") {
        (Stream::Stderr, r)
    } else {
        return Err(CriLogError::Stream);
    };
    // The tag runs to the next space, or to the end of the line when the
    // content is empty (some writers omit the separator then).
    let (tag_field, content) = match memchr::memchr(b' ', rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    let main = match memchr::memchr(b':', tag_field) {
        Some(i) => &tag_field[..i],
        None => tag_field,
    };
    let tag = match main {
        b"F" => Tag::Full,
        b"P" => Tag::Partial,
        _ => return Err(CriLogError::Tag),
    };
    Ok(CriLine {
        time,
        stream,
        tag,
        content,
    })
}

/// Reads the timestamp at the start of a line, if the line has a valid one.
pub fn line_timestamp(line: &[u8]) -> Option<Nanos> {
    let sp = memchr::memchr(b' ', line)?;
    parse_timestamp(&line[..sp])
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` into UTC nanoseconds.
/// Lowercase `t`/`z` are accepted, as RFC 3339 allows. A time outside the
/// range of [`Nanos`] (1677-09-21 to 2262-04-11) is `None`.
pub fn parse_timestamp(s: &[u8]) -> Option<Nanos> {
    Nanos::try_from(parse_timestamp_wide(s)?).ok()
}

/// [`parse_timestamp`] over every year RFC 3339 can write (0000 to 9999):
/// a query's time bound may lie beyond the range of [`Nanos`] and still
/// compare with other bounds exactly.
pub(crate) fn parse_timestamp_wide(s: &[u8]) -> Option<i128> {
    if s.len() < 20 || s.len() > 40 {
        return None;
    }
    if s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't') || s[13] != b':' {
        return None;
    }
    if s[16] != b':' {
        return None;
    }
    let year = digits(&s[0..4])?;
    let month = digits(&s[5..7])?;
    let day = digits(&s[8..10])?;
    let hour = digits(&s[11..13])?;
    let min = digits(&s[14..16])?;
    let sec = digits(&s[17..19])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac: i64 = 0;
    if let Some(r) = rest.strip_prefix(b".") {
        let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        frac = digits(&r[..n])? * 10i64.pow(9 - n as u32);
        rest = &r[n..];
    }
    let offset_secs = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            if h > 23 || m > 59 {
                return None;
            }
            let o = h * 3600 + m * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    Some(i128::from(secs) * 1_000_000_000 + i128::from(frac))
}

/// A wide time as [`Nanos`], the nearest end of its range when beyond it:
/// no event lies beyond either end, so as a bound it selects the same
/// events.
pub(crate) fn saturate(t: i128) -> Nanos {
    Nanos::try_from(t).unwrap_or(if t < 0 { Nanos::MIN } else { Nanos::MAX })
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Appends `t` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (UTC, nine fraction
/// digits, so that the strings sort like the instants).
pub fn format_timestamp(t: Nanos, out: &mut Vec<u8>) {
    let secs = t.div_euclid(1_000_000_000);
    let nanos = t.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // Digits by hand: this runs once per served event.
    let mut b = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    if (0..=9999).contains(&y) {
        put(0, 4, y);
    } else {
        // Outside RFC 3339's range: clamp rather than print garbage.
        put(0, 4, y.clamp(0, 9999));
    }
    put(5, 2, m);
    put(8, 2, d);
    put(11, 2, sod / 3600);
    put(14, 2, (sod / 60) % 60);
    put(17, 2, sod % 60);
    put(20, 9, nanos);
    out.extend_from_slice(&b);
}

/// The wall clock in CRI time (nanoseconds since the epoch).
pub fn now_nanos() -> Nanos {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// [`format_timestamp`] into a new `String`.
pub fn timestamp_string(t: Nanos) -> String {
    let mut v = Vec::with_capacity(30);
    format_timestamp(t, &mut v);
    String::from_utf8(v).expect("timestamp formatting writes ASCII only")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Nanos {
        parse_timestamp(s.as_bytes()).unwrap()
    }

    #[test]
    fn parses_lines() {
        type Case<'a> = (&'a [u8], Result<(Stream, Tag, &'a [u8]), CriLogError>);
        let cases: &[Case<'_>] = &[
            (
                b"2026-11-21T05:26:50.936241998Z stdout F line 1",
                Ok((Stream::Stdout, Tag::Full, b"line 1")),
            ),
            (
                b"2026-11-21T05:26:50.936241998Z stderr P chunk ",
                Ok((Stream::Stderr, Tag::Partial, b"chunk ")),
            ),
            (
                b"2026-11-21T05:27:03.65666827Z stdout F x",
                Ok((Stream::Stdout, Tag::Full, b"x")),
            ),
            (
                b"2017-11-02T16:05:05.140456062-04:00 stdout F crio",
                Ok((Stream::Stdout, Tag::Full, b"crio")),
            ),
            (
                b"2026-11-21T05:26:50Z stdout F:x:y extra tag",
                Ok((Stream::Stdout, Tag::Full, b"extra tag")),
            ),
            (
                b"2026-11-21T05:26:50Z stdout F ",
                Ok((Stream::Stdout, Tag::Full, b"")),
            ),
            (
                b"2026-11-21T05:26:50Z stdout F",
                Ok((Stream::Stdout, Tag::Full, b"")),
            ),
            (
                b"2026-11-21T05:26:50Z stdout F a\0b\xff",
                Ok((Stream::Stdout, Tag::Full, b"a\0b\xff")),
            ),
            (b"", Err(CriLogError::Timestamp)),
            (b"garbage", Err(CriLogError::Timestamp)),
            (
                b"2026-13-21T05:26:50Z stdout F x",
                Err(CriLogError::Timestamp),
            ),
            (
                b"2026-02-30T05:26:50Z stdout F x",
                Err(CriLogError::Timestamp),
            ),
            (
                b"2026-11-21T05:26:50.1234567890Z stdout F x",
                Err(CriLogError::Timestamp),
            ),
            (b"2026-11-21T05:26:50Z stdin F x", Err(CriLogError::Stream)),
            (b"2026-11-21T05:26:50Z stdout X x", Err(CriLogError::Tag)),
            (b"2026-11-21T05:26:50Z stdout", Err(CriLogError::Stream)),
            (b"2026-11-21T05:26:50Z stdout ", Err(CriLogError::Tag)),
        ];
        for (input, want) in cases {
            let got = parse_line(input).map(|l| (l.stream, l.tag, l.content));
            assert_eq!(&got, want, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn timestamps_compare_in_utc() {
        assert_eq!(
            ts("2017-11-02T16:05:05.140456062-04:00"),
            ts("2017-11-02T20:05:05.140456062Z")
        );
        assert_eq!(ts("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ts("1970-01-01T00:00:01.5Z"), 1_500_000_000);
        assert_eq!(
            ts("2026-11-21T05:27:03.65666827Z") % 1_000_000_000,
            656_668_270
        );
        assert!(ts("2024-02-29T00:00:00Z") > ts("2024-02-28T23:59:59.999999999Z"));
    }

    #[test]
    fn formats_round_trip() {
        for s in [
            "2026-11-21T05:26:50.936241998Z",
            "1970-01-01T00:00:00.000000000Z",
            "2000-02-29T23:59:59.999999999Z",
            "1969-12-31T23:59:59.000000001Z",
        ] {
            assert_eq!(timestamp_string(ts(s)), s);
        }
    }

    #[test]
    fn times_beyond_nanos_are_wide_only() {
        for (s, nanos) in [
            ("1677-09-21T00:12:43.145224192Z", Some(Nanos::MIN)),
            ("1677-09-21T00:12:43.145224191Z", None),
            ("2262-04-11T23:47:16.854775807Z", Some(Nanos::MAX)),
            ("2262-04-11T23:47:16.854775808Z", None),
            ("0000-01-01T00:00:00Z", None),
            ("9999-12-31T23:59:59.999999999-23:59", None),
        ] {
            assert_eq!(parse_timestamp(s.as_bytes()), nanos, "{s}");
            let wide = parse_timestamp_wide(s.as_bytes()).unwrap();
            assert_eq!(saturate(wide), nanos.unwrap_or(saturate(wide)), "{s}");
        }
        let wide = |s: &str| parse_timestamp_wide(s.as_bytes()).unwrap();
        assert_eq!(saturate(wide("3031-10-16T21:01:28Z")), Nanos::MAX);
        assert_eq!(saturate(wide("0001-01-01T00:00:00Z")), Nanos::MIN);
        // Beyond the range, order is kept.
        assert!(wide("3031-10-16T21:01:28Z") < wide("3031-10-16T21:01:29Z"));
        assert!(wide("1000-01-01T00:00:00Z") < wide("1000-01-01T00:00:00.000000001Z"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..120)) {
            let _ = parse_line(&bytes);
        }

        #[test]
        fn timestamp_round_trip(t in -2_000_000_000_000_000_000i64..4_000_000_000_000_000_000i64) {
            let s = timestamp_string(t);
            proptest::prop_assert_eq!(parse_timestamp(s.as_bytes()), Some(t));
        }
    }
}
