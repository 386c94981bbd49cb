//! podlog's policy model: pure values and parsing, no I/O.
//!
//! This crate holds what the agent needs to turn operator input into checked
//! values: today, Kubernetes-style quantities for sizes (`10Mi`, `1G`) and
//! the default event cap. Rotation, retention and delimiter policies build
//! on these. Nothing here touches the filesystem, the network or a runtime.
#![warn(missing_docs)]

/// Default cap on one event's content, in bytes (1 MiB).
pub const DEFAULT_MAX_EVENT_BYTES: u64 = 1 << 20;

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
            ("", Err(())),
            ("Mi", Err(())),
            ("-1", Err(())),
            ("1.5Mi", Err(())),
            ("10mi", Err(())),
            ("99999999999999999999Ti", Err(())),
            ("1 Mi", Err(())),
        ];
        for (input, want) in cases {
            assert_eq!(parse_size(input).map_err(|_| ()), *want, "{input:?}");
        }
    }
}
