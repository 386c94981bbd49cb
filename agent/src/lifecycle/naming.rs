//! The name of a rotated file: `N.log.<suffix>`, chosen so that the reader
//! ([`crate::fs::fileset::group`]) puts it after every earlier rotation of the
//! same attempt and before `N.log`, and so that it never takes an existing
//! name.
//!
//! The reader orders rotated files by comparing their suffixes as strings
//! (byte order). The suffix is the kubelet's, `YYYYMMDD-HHMMSS`, in UTC, so
//! podlog's files and a UTC kubelet's sort together. A second rotation in
//! the same second, or a rotation while the clock reads earlier than the
//! newest rotation present (a clock stepped back), takes the newest suffix
//! present and appends a three-digit sequence: `20261121-050000.001`, then
//! `.002`, … up to `.999`, then `.999.001`. A string is always ordered
//! after its own prefixes, and `.` sorts before every digit, so
//! `20261121-050000` < `20261121-050000.001` < `20261121-050000.002` <
//! `20261121-050001`. The sequence has a fixed width so that `.010` does not
//! sort before `.002`, which a plain counter (`X.10` < `X.2`) would.
//! Milliseconds were considered and not used: two rotations can share a
//! millisecond, and a clock stepped back would still need the fallback.

use crate::cri;
use crate::fs::fileset;

/// Width of the sequence appended to a suffix that is taken.
const SEQ_WIDTH: usize = 3;
/// The largest sequence; past it a new sequence is appended.
const SEQ_MAX: u32 = 999;
/// Longest suffix podlog makes. Far beyond anything reached in practice
/// (`.999.001` needs a thousand rotations in one second), and well below
/// the 255-byte limit of a file name.
pub(crate) const MAX_SUFFIX_LEN: usize = 200;

/// Extensions of compressed copies that the reader does not read (`.gz`
/// and `.zst` it reads: [`fileset::classify`] knows them). A rotation must
/// not take the name of their plain twin either.
const OTHER_CODECS: [&str; 3] = [".xz", ".bz2", ".lz4"];

/// The kubelet's rotation suffix for `now` (Unix nanoseconds), in UTC:
/// `YYYYMMDD-HHMMSS`.
pub(crate) fn timestamp_suffix(now: i64) -> String {
    // `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`: take the digits needed.
    let ts = cri::timestamp_string(now);
    debug_assert_eq!(ts.len(), 30, "timestamp_string has a fixed width");
    let mut out = String::with_capacity(15);
    for range in [0..4, 5..7, 8..10] {
        out.push_str(&ts[range]);
    }
    out.push('-');
    for range in [11..13, 14..16, 17..19] {
        out.push_str(&ts[range]);
    }
    out
}

/// The rotation suffix of `name` if it is a rotated file of `attempt`, in
/// any codec, readable or not.
fn rotation_of(name: &str, attempt: u32) -> Option<String> {
    let stem = OTHER_CODECS
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(name);
    let f = fileset::classify(stem)?;
    if f.attempt != attempt {
        return None;
    }
    f.rotated
}

/// The suffix right after `max`: its three-digit sequence plus one, or a
/// new sequence `.001`.
fn successor(max: &str) -> String {
    if let Some((base, seq)) = max.rsplit_once('.') {
        if seq.len() == SEQ_WIDTH && seq.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = seq.parse::<u32>() {
                if n < SEQ_MAX {
                    return format!("{base}.{:0w$}", n + 1, w = SEQ_WIDTH);
                }
            }
        }
    }
    format!("{max}.{:0w$}", 1, w = SEQ_WIDTH)
}

/// Chooses the suffix of a new rotation of `attempt` at `now`, given the
/// names in the container directory: the timestamp when it sorts after
/// every rotation of the attempt present, else the successor of the newest
/// one (see the module documentation). The result is accepted by
/// [`fileset::classify`] and differs from every present rotation, plain or
/// compressed.
///
/// # Errors
///
/// `None` when the successor would be longer than [`MAX_SUFFIX_LEN`].
pub(crate) fn rotated_suffix<'a>(
    names: impl IntoIterator<Item = &'a str>,
    attempt: u32,
    now: i64,
) -> Option<String> {
    let base = timestamp_suffix(now);
    let newest = names
        .into_iter()
        .filter_map(|n| rotation_of(n, attempt))
        .max();
    let suffix = match newest {
        Some(max) if max >= base => successor(&max),
        _ => base,
    };
    (suffix.len() <= MAX_SUFFIX_LEN).then_some(suffix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::safe_open::Kind;
    use proptest::prelude::*;

    /// 2026-11-21T05:00:00Z.
    const T0: i64 = 1_795_237_200 * 1_000_000_000;
    const S: i64 = 1_000_000_000;

    #[test]
    fn the_timestamp_is_the_kubelets_format_in_utc() {
        assert_eq!(timestamp_suffix(T0), "20261121-050000");
        assert_eq!(
            timestamp_suffix(T0 + 3_723 * S + 999_999_999),
            "20261121-060203"
        );
        assert_eq!(timestamp_suffix(0), "19700101-000000");
    }

    #[test]
    fn suffixes_in_a_table() {
        let cases: &[(&[&str], i64, &str)] = &[
            // Nothing rotated yet.
            (&["0.log"], T0, "20261121-050000"),
            // Older rotations, plain and compressed, kubelet's or ours.
            (
                &[
                    "0.log",
                    "0.log.20261121-040000.gz",
                    "0.log.20261121-045959.002",
                ],
                T0,
                "20261121-050000",
            ),
            // The same second: a sequence.
            (
                &["0.log", "0.log.20261121-050000"],
                T0,
                "20261121-050000.001",
            ),
            (&["0.log.20261121-050000.gz"], T0, "20261121-050000.001"),
            (
                &["0.log.20261121-050000", "0.log.20261121-050000.001.gz"],
                T0 + S / 2,
                "20261121-050000.002",
            ),
            (&["0.log.20261121-050000.009"], T0, "20261121-050000.010"),
            (
                &["0.log.20261121-050000.999"],
                T0,
                "20261121-050000.999.001",
            ),
            // A clock stepped back: after the newest present, whatever now says.
            (&["0.log.20261121-060000"], T0, "20261121-060000.001"),
            // A foreign suffix that sorts last.
            (&["0.log.zzz"], T0, "zzz.001"),
            // A zstd twin holds the name, as does one in a codec the
            // reader does not read.
            (&["0.log.20261121-050000.zst"], T0, "20261121-050000.001"),
            (&["0.log.20261121-050000.xz"], T0, "20261121-050000.001"),
            (
                &["0.log.20261121-050000.gz", "0.log.20261121-050000.001.zst"],
                T0,
                "20261121-050000.002",
            ),
            // Other attempts, temporary files and other names do not count.
            (
                &[
                    "1.log.20261121-050000",
                    "0.log.20261121-050000.tmp",
                    "0.log.20261121-050000.gz.tmp",
                    "0.log.20261121-050000.zst.tmp",
                    "0.log.20261121-050000.gz.0123456789abcdef.tmp",
                    "0.log.20261121-050000.trim.fedcba9876543210.tmp",
                    "x.log.20261121-050000",
                    "junk",
                ],
                T0,
                "20261121-050000",
            ),
        ];
        for (names, now, want) in cases {
            assert_eq!(
                rotated_suffix(names.iter().copied(), 0, *now).as_deref(),
                Some(*want),
                "{names:?}"
            );
        }
    }

    #[test]
    fn sequences_sort_in_the_readers_order() {
        // What a plain counter would get wrong: `X.10` < `X.2` as strings.
        let mut names = vec!["0.log".to_owned()];
        for _ in 0..12 {
            let s = rotated_suffix(names.iter().map(String::as_str), 0, T0).unwrap();
            names.push(format!("0.log.{s}"));
        }
        names.push("0.log.20261121-050001".to_owned());
        let entries: Vec<(String, Kind)> = names.iter().map(|n| (n.clone(), Kind::File)).collect();
        let order: Vec<String> = fileset::group(&entries)[&0]
            .iter()
            .map(|f| f.name.clone())
            .collect();
        let mut want: Vec<String> = names[1..13].to_vec();
        want.push("0.log.20261121-050001".to_owned());
        want.push("0.log".to_owned());
        assert_eq!(order, want);
        assert_eq!(names[12], "0.log.20261121-050000.011");
    }

    #[test]
    fn an_overlong_successor_is_refused() {
        let long = format!("0.log.{}", "9".repeat(MAX_SUFFIX_LEN));
        assert_eq!(rotated_suffix([long.as_str()], 0, T0), None);
    }

    fn suffix_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            (0i64..4000).prop_map(|s| timestamp_suffix(T0 + s * S)),
            ((0i64..4000), (0u32..1000))
                .prop_map(|(s, n)| format!("{}.{n:03}", timestamp_suffix(T0 + s * S))),
            "[0-9a-z._-]{1,20}".prop_filter("a valid suffix", |s| {
                fileset::classify(&format!("0.log.{s}"))
                    .is_some_and(|f| f.rotated.as_deref() == Some(s.as_str()))
            }),
        ]
    }

    proptest! {
        /// Whatever is present, the new name is a rotated file of the
        /// attempt, takes no present name, and the reader puts it after every
        /// present rotation and right before `N.log`.
        #[test]
        fn new_names_sort_last_and_never_collide(
            present in proptest::collection::vec((suffix_strategy(), 0usize..3), 0..8),
            now_s in 0i64..4000,
        ) {
            let mut names: Vec<String> = vec!["0.log".into()];
            for (s, ext) in &present {
                names.push(format!("0.log.{s}{}", ["", ".gz", ".zst"][*ext]));
            }
            let Some(s) = rotated_suffix(names.iter().map(String::as_str), 0, T0 + now_s * S) else {
                // Only a suffix already at the length limit has no successor.
                prop_assert!(present.iter().any(|(p, _)| p.len() + 4 > MAX_SUFFIX_LEN));
                return Ok(());
            };
            let new = format!("0.log.{s}");
            let f = fileset::classify(&new).expect("the reader accepts the name");
            prop_assert_eq!(f.rotated.as_deref(), Some(s.as_str()));
            prop_assert!(!f.compressed);
            for n in [new.clone(), format!("{new}.gz"), format!("{new}.zst")] {
                prop_assert!(!names.contains(&n), "{} is taken", n);
            }
            names.push(new.clone());
            let entries: Vec<(String, Kind)> =
                names.iter().map(|n| (n.clone(), Kind::File)).collect();
            let order: Vec<String> = fileset::group(&entries)[&0]
                .iter()
                .map(|f| f.name.clone())
                .collect();
            prop_assert_eq!(order.last().map(String::as_str), Some("0.log"));
            prop_assert_eq!(&order[order.len() - 2], &new);
        }
    }
}
