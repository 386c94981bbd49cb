//! The manager's pure parts: event marks, foreign rotations.

use super::*;

fn line(t: &str, s: &str, tag: &str, c: &str) -> String {
    format!("{t} {s} {tag} {c}\n")
}

#[test]
fn another_rotators_files_are_reported_once() {
    let mut known = std::collections::HashSet::new();
    let first = ["0.log.20261121-050000".to_owned()];
    assert_eq!(foreign_rotations(&mut known, &first), first.to_vec());
    // Ours compressed, and the same again: nothing new.
    let later = [
        "0.log.20261121-050000.gz".to_owned(),
        "0.log.20261121-050000.zst".to_owned(),
        "0.log.20261121-060000".to_owned(),
    ];
    known.insert("0.log.20261121-060000".to_owned());
    assert!(foreign_rotations(&mut known, &later).is_empty());
    // Someone else's: reported once.
    let other = ["0.log.20261121-070000.gz".to_owned()];
    assert_eq!(foreign_rotations(&mut known, &other), other.to_vec());
    assert!(foreign_rotations(&mut known, &other).is_empty());
    let other = ["0.log.20261121-080000.zst".to_owned()];
    assert_eq!(foreign_rotations(&mut known, &other), other.to_vec());
    assert!(foreign_rotations(&mut known, &other).is_empty());
    // Ours compressed with zstd: not foreign.
    known.insert("0.log.20261121-090000".to_owned());
    let ours = ["0.log.20261121-090000.zst".to_owned()];
    assert!(foreign_rotations(&mut known, &ours).is_empty());
}

/// Marks and the open streams at the end, of a file holding `content`.
fn marks(content: &[u8], open: [bool; 2], first_only: bool) -> (Vec<EventMark>, [bool; 2]) {
    let file = Content::Mem(std::sync::Arc::new(content.to_vec()));
    let mut chains = Chains::default();
    for (s, _) in [crate::cri::Stream::Stdout, crate::cri::Stream::Stderr]
        .into_iter()
        .zip(open)
        .filter(|(_, o)| *o)
    {
        chains.open_at(s, ());
    }
    let (m, end) = event_marks(&file, content.len() as u64, chains, first_only);
    (m, end.open())
}

#[test]
fn marks_are_where_no_chain_is_open() {
    let t = "2026-11-21T05:00:00.000000001Z";
    let content = [
        line(t, "stdout", "F", "a"),
        line(t, "stdout", "P", "b1"),
        line(t, "stderr", "F", "x"),
        line(t, "stdout", "F", "b2"),
        line(t, "stderr", "P", "y1"),
        line(t, "stderr", "F", "y2"),
        line(t, "stdout", "F", "c"),
    ]
    .concat();
    let (all, end) = marks(content.as_bytes(), [false; 2], false);
    assert_eq!(end, [false, false]);
    let offsets: Vec<u64> = all.iter().map(|m| m.offset).collect();
    let starts: Vec<u64> = content
        .split_inclusive('\n')
        .scan(0u64, |o, l| {
            let s = *o;
            *o += l.len() as u64;
            Some(s)
        })
        .collect();
    // Lines 0 (a), 1 (b1 starts a chain), 4 (y1), 6 (c); not inside
    // the chains (2, 3 while b is open; 5 while y is open).
    assert_eq!(offsets, [starts[0], starts[1], starts[4], starts[6]]);
    let (first, _) = marks(content.as_bytes(), [false; 2], true);
    assert_eq!(first.iter().map(|m| m.offset).collect::<Vec<_>>(), [0]);
    // A chain open at the end of the previous file: no mark until it
    // ends, and the state carries on.
    let (m, end) = marks(content.as_bytes(), [true, false], false);
    assert_eq!(
        m.iter().map(|m| m.offset).collect::<Vec<_>>(),
        [starts[1], starts[4], starts[6]]
    );
    assert_eq!(end, [false, false]);
    let (_, end) = marks(line(t, "stderr", "P", "z").as_bytes(), [false; 2], false);
    assert_eq!(end, [false, true]);
    // A trailing line without its newline is no mark.
    let (m, _) = marks(b"2026-11-21T05:00:00Z stdout F a", [false; 2], false);
    assert!(m.is_empty());
}
