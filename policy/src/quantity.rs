//! Quantities written by operators: byte sizes (`10Mi`, `5k`) and durations
//! (`36h`, `1h30m`, `250ms`).
//!
//! Both parsers are strict and small: they accept only what is documented,
//! never wrap around, and name the input in their errors. Range checks (a
//! minimum file size, a maximum flush delay) belong to the fields that use
//! them, not here.

use std::time::Duration;

/// Why a size could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Empty input.
    #[error("empty size")]
    Empty,
    /// Not a number followed by a known suffix.
    #[error("{value:?} is not a size (examples: 512, 10Ki, 10Mi, 1Gi, 5M)")]
    Syntax {
        /// The input.
        value: String,
    },
    /// The value does not fit in 64 bits.
    #[error("{value:?} is too large")]
    Overflow {
        /// The input.
        value: String,
    },
}

/// Parses a byte size written as a Kubernetes quantity: a non-negative
/// integer with an optional binary (`Ki`, `Mi`, `Gi`, `Ti`) or decimal (`k`,
/// `K`, `M`, `G`, `T`) suffix.
///
/// ```
/// assert_eq!(podlog_policy::parse_size("10Mi"), Ok(10 * 1024 * 1024));
/// assert_eq!(podlog_policy::parse_size("5k"), Ok(5000));
/// assert!(podlog_policy::parse_size("-1Mi").is_err());
/// ```
///
/// # Errors
///
/// [`SizeError`] naming the input.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(SizeError::Empty);
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let syntax = || SizeError::Syntax {
        value: s.to_owned(),
    };
    if digits == 0 || digits > 20 {
        return Err(syntax());
    }
    let n: u64 = t[..digits].parse().map_err(|_| SizeError::Overflow {
        value: s.to_owned(),
    })?;
    let mult: u64 = match &t[digits..] {
        "" => 1,
        "k" | "K" => 1000,
        "M" => 1000_u64.pow(2),
        "G" => 1000_u64.pow(3),
        "T" => 1000_u64.pow(4),
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return Err(syntax()),
    };
    n.checked_mul(mult).ok_or_else(|| SizeError::Overflow {
        value: s.to_owned(),
    })
}

/// Why a duration could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Empty input.
    #[error("empty duration")]
    Empty,
    /// Not a sequence of `<integer><unit>` with units in decreasing order.
    #[error(
        "{value:?} is not a duration (integers with units d, h, m, s, ms, largest first: 36h, 1h30m, 7d, 250ms)"
    )]
    Syntax {
        /// The input.
        value: String,
    },
    /// The value does not fit in a [`Duration`].
    #[error("{value:?} is too large")]
    Overflow {
        /// The input.
        value: String,
    },
}

/// Units in the order they must appear, with their length.
const UNITS: [(&str, Duration); 5] = [
    ("d", Duration::from_secs(86_400)),
    ("h", Duration::from_secs(3_600)),
    ("m", Duration::from_secs(60)),
    ("s", Duration::from_secs(1)),
    ("ms", Duration::from_millis(1)),
];

/// Parses a duration: one or more `<integer><unit>` parts with units `d`
/// (24 hours), `h`, `m`, `s` and `ms`, each unit at most once and largest
/// first, with no sign, fraction or inner space (`36h`, `90m`, `7d`, `1h30m`,
/// `250ms`). A bare number is an error: the unit is never guessed.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(podlog_policy::parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
/// assert!(podlog_policy::parse_duration("30m1h").is_err());
/// assert!(podlog_policy::parse_duration("3600").is_err());
/// ```
///
/// # Errors
///
/// [`DurationError`] naming the input.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(DurationError::Empty);
    }
    let syntax = || DurationError::Syntax {
        value: s.to_owned(),
    };
    let overflow = || DurationError::Overflow {
        value: s.to_owned(),
    };
    let mut rest = t;
    let mut total = Duration::ZERO;
    // Index into UNITS of the next unit allowed: units strictly decrease.
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(syntax());
        }
        if digits > 20 {
            return Err(overflow());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| overflow())?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let Some(pos) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(syntax());
        };
        if pos < next_unit {
            return Err(syntax());
        }
        next_unit = pos + 1;
        let part = u32::try_from(n)
            .ok()
            .and_then(|n32| UNITS[pos].1.checked_mul(n32))
            .or_else(|| {
                // Too many units for a u32 factor: go through whole seconds
                // (or milliseconds), still checked.
                let (_, len) = UNITS[pos];
                if len >= Duration::from_secs(1) {
                    n.checked_mul(len.as_secs()).map(Duration::from_secs)
                } else {
                    Some(Duration::from_millis(n))
                }
            })
            .ok_or_else(overflow)?;
        total = total.checked_add(part).ok_or_else(overflow)?;
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it, largest unit
/// first (`1h30m`, `7d`, `250ms`, `0s`). Parts below a millisecond are
/// dropped.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(podlog_policy::format_duration(Duration::from_secs(5400)), "1h30m");
/// ```
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (name, len) in UNITS {
        let unit_ms = len.as_millis();
        let n = ms / unit_ms;
        if n > 0 {
            out.push_str(&n.to_string());
            out.push_str(name);
            ms %= unit_ms;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases: &[(&str, Result<u64, ()>)] = &[
            ("0", Ok(0)),
            ("512", Ok(512)),
            ("10Ki", Ok(10 << 10)),
            ("1Gi", Ok(1 << 30)),
            ("2T", Ok(2_000_000_000_000)),
            (" 3Mi ", Ok(3 << 20)),
            ("18446744073709551615", Ok(u64::MAX)),
            ("", Err(())),
            ("Mi", Err(())),
            ("-1", Err(())),
            ("1.5Mi", Err(())),
            ("10mi", Err(())),
            ("99999999999999999999Ti", Err(())),
            ("18446744073709551616", Err(())),
            ("1 Mi", Err(())),
            ("1\0", Err(())),
            ("١٢", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(parse_size(input).map_err(|_| ()), *want, "{input:?}");
        }
        assert_eq!(
            parse_size("17179869184Gi"),
            Err(SizeError::Overflow {
                value: "17179869184Gi".into()
            })
        );
    }

    #[test]
    fn durations() {
        let s = Duration::from_secs;
        let cases: &[(&str, Result<Duration, ()>)] = &[
            ("36h", Ok(s(36 * 3600))),
            ("90m", Ok(s(5400))),
            ("7d", Ok(s(7 * 86_400))),
            ("1h30m", Ok(s(5400))),
            ("1d2h3m4s5ms", Ok(s(93_784) + Duration::from_millis(5))),
            ("250ms", Ok(Duration::from_millis(250))),
            ("0s", Ok(Duration::ZERO)),
            (" 2h ", Ok(s(7200))),
            ("1m1ms", Ok(s(60) + Duration::from_millis(1))),
            ("", Err(())),
            ("   ", Err(())),
            ("3600", Err(())),
            ("h", Err(())),
            ("1.5h", Err(())),
            ("-1h", Err(())),
            ("+1h", Err(())),
            ("30m1h", Err(())),
            ("1h1h", Err(())),
            ("1h 30m", Err(())),
            ("1H", Err(())),
            ("1w", Err(())),
            ("1us", Err(())),
            ("1hh", Err(())),
            ("1h\0", Err(())),
            ("99999999999999999999d", Err(())),
            ("999999999999999999999999999999s", Err(())),
            ("213503982334602d", Err(())),
            ("213503982334601d", Ok(s(213_503_982_334_601 * 86_400))),
            ("18446744073709551615s1s", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input).map_err(|_| ()), *want, "{input:?}");
        }
        assert_eq!(
            parse_duration("18446744073709551615d"),
            Err(DurationError::Overflow {
                value: "18446744073709551615d".into()
            })
        );
        // The largest whole-second value still parses.
        assert_eq!(parse_duration("18446744073709551615s"), Ok(s(u64::MAX)));
        assert_eq!(
            parse_duration("18446744073709551615ms"),
            Ok(Duration::from_millis(u64::MAX))
        );
    }

    #[test]
    fn format_round_trips() {
        for text in ["1d12h", "1h30m", "7d", "250ms", "1d2h3m4s5ms", "0s", "1s"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(format_duration(d), text);
        }
        assert_eq!(format_duration(parse_duration("36h").unwrap()), "1d12h");
        assert_eq!(format_duration(Duration::from_secs(90 * 60)), "1h30m");
        assert_eq!(format_duration(Duration::from_nanos(999_999)), "0s");
    }
}
