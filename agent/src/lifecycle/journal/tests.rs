//! Tests of `journal`.

use super::*;

fn rotate(container: &str, n: u32) -> Intent {
    Intent::Rotate {
        dir: vec!["ns_pod_uid".into(), container.into()],
        active: "0.log".into(),
        rotated: format!("0.log.20261121-07150{n}.123"),
        container_id: "c0ffee".into(),
    }
}

fn compress(source: &str) -> Intent {
    Intent::Compress {
        dir: vec!["ns_pod_uid".into(), "app".into()],
        source: source.into(),
        temp: format!("{source}.gz.tmp"),
        target: format!("{source}.gz"),
    }
}

fn trim() -> Intent {
    Intent::Trim {
        dir: vec!["ns_pod_uid".into(), "app".into()],
        file: "0.log.1".into(),
        offset: 4096,
        temp: "0.log.1.trim.tmp".into(),
    }
}

fn delete(file: &str) -> Intent {
    Intent::Delete {
        dir: vec!["ns_pod_uid".into(), "app".into()],
        file: file.into(),
    }
}

struct State {
    dir: tempfile::TempDir,
    root: Arc<SafeRoot>,
}

fn state() -> State {
    let dir = tempfile::tempdir().unwrap();
    let root = Arc::new(SafeRoot::open(dir.path()).unwrap());
    State { dir, root }
}

impl State {
    fn open(&self) -> Journal {
        Journal::open(self.root.clone()).unwrap()
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path().join(DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.dir.path().join(DIR).join(name), bytes).unwrap();
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(DIR).join(name)).unwrap()
    }
}

#[test]
fn begin_advance_complete_round_trip() {
    let s = state();
    let mut j = s.open();
    assert!(j.pending().is_empty());
    let id = j.begin(rotate("app", 0)).unwrap();
    assert_eq!(j.pending(), vec![(id, rotate("app", 0), Phase::Begun)]);
    assert!(s.names().contains(&record_name(id)));
    j.advance(id, Phase::Renamed).unwrap();
    j.advance(id, Phase::Renamed).unwrap();
    j.advance(id, Phase::Reopened).unwrap();
    assert_eq!(j.pending(), vec![(id, rotate("app", 0), Phase::Reopened)]);
    // The file is plain JSON with the record inside.
    let v: serde_json::Value = serde_json::from_slice(&s.read(&record_name(id))).unwrap();
    assert_eq!(v["record"]["phase"], "reopened");
    assert_eq!(v["record"]["intent"]["op"], "rotate");
    assert_eq!(v["record"]["v"], "1");
    j.complete(id).unwrap();
    assert!(j.pending().is_empty());
    assert_eq!(
        s.names(),
        vec![IDS.to_owned()],
        "only the id reservation stays"
    );
    assert!(matches!(j.complete(id), Err(JournalError::Unknown { .. })));
    assert!(j.corrupt().is_empty());
}

#[test]
fn compress_records_name_the_codec_by_the_target_alone() {
    let s = state();
    std::fs::create_dir_all(s.dir.path().join(DIR)).unwrap();
    // A record as the gzip-only podlog wrote it.
    let body = br#"{"v":"1","id":5,"intent":{"op":"compress","dir":["ns_pod_uid","app"],"source":"0.log.1","temp":"0.log.1.gz.tmp","target":"0.log.1.gz"},"phase":"temp_written"}"#;
    let mut old = Vec::new();
    old.extend_from_slice(HEAD);
    old.extend_from_slice(format!("{:08x}", crc32(body)).as_bytes());
    old.extend_from_slice(MID);
    old.extend_from_slice(body);
    old.extend_from_slice(TAIL);
    s.write(&record_name(EntryId(5)), &old);
    let zstd = Intent::Compress {
        dir: vec!["ns_pod_uid".into(), "app".into()],
        source: "0.log.2".into(),
        temp: "0.log.2.zst.tmp".into(),
        target: "0.log.2.zst".into(),
    };
    let id = {
        let mut j = s.open();
        assert!(j.corrupt().is_empty());
        j.begin(zstd.clone()).unwrap()
    };
    let j = s.open();
    assert!(j.corrupt().is_empty());
    assert_eq!(
        j.pending(),
        vec![
            (EntryId(5), compress("0.log.1"), Phase::TempWritten),
            (id, zstd, Phase::Begun),
        ]
    );
    // The same fields as before: nothing but the names changed.
    let v: serde_json::Value = serde_json::from_slice(&s.read(&record_name(id))).unwrap();
    let mut keys: Vec<&str> = v["record"]["intent"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["dir", "op", "source", "target", "temp"]);
}

fn drop_span(trim: bool) -> Intent {
    Intent::DropSpan {
        dir: vec![
            "ns_pod_uid".into(),
            if trim { "app" } else { "sidecar" }.into(),
        ],
        files: vec!["0.log.1".into(), "0.log.2".into()],
        trim: trim.then(|| SpanTrim {
            file: "0.log.3".into(),
            offset: 512,
            temp: "0.log.3.trim.tmp".into(),
        }),
    }
}

#[test]
fn drop_span_records_round_trip() {
    let s = state();
    let (with, without) = {
        let mut j = s.open();
        let with = j.begin(drop_span(true)).unwrap();
        j.advance(with, Phase::TempWritten).unwrap();
        let without = j.begin(drop_span(false)).unwrap();
        // No temporary file without a trim.
        assert!(matches!(
            j.advance(without, Phase::TempWritten),
            Err(JournalError::BadPhase { .. })
        ));
        // Every name is taken while in flight.
        for name in ["0.log.1", "0.log.2", "0.log.3", "0.log.3.trim.tmp"] {
            assert!(
                matches!(j.begin(delete(name)), Err(JournalError::Conflict { .. })),
                "{name}"
            );
        }
        let none = Intent::DropSpan {
            dir: vec!["ns_pod_uid".into(), "other".into()],
            files: Vec::new(),
            trim: None,
        };
        assert!(matches!(
            j.begin(none),
            Err(JournalError::Intent {
                source: IntentError::NoFile,
                ..
            })
        ));
        (with, without)
    };
    let j = s.open();
    assert!(j.corrupt().is_empty());
    assert_eq!(
        j.pending(),
        vec![
            (with, drop_span(true), Phase::TempWritten),
            (without, drop_span(false), Phase::Begun),
        ]
    );
    let v: serde_json::Value = serde_json::from_slice(&s.read(&record_name(with))).unwrap();
    assert_eq!(v["record"]["intent"]["op"], "drop");
    assert_eq!(v["record"]["intent"]["trim"]["offset"], 512);
    let v: serde_json::Value = serde_json::from_slice(&s.read(&record_name(without))).unwrap();
    assert!(v["record"]["intent"].get("trim").is_none());
}

#[test]
fn advance_checks_the_phase_sequence() {
    let s = state();
    let mut j = s.open();
    let r = j.begin(rotate("app", 0)).unwrap();
    let c = j.begin(compress("0.log.2")).unwrap();
    let d = j.begin(delete("0.log.0")).unwrap();
    let t = j.begin(trim()).unwrap();
    for (id, phase) in [
        (r, Phase::TempWritten),
        (r, Phase::Replaced),
        (c, Phase::Reopened),
        (d, Phase::Renamed),
        (t, Phase::Renamed),
    ] {
        let e = j.advance(id, phase).unwrap_err();
        assert!(matches!(e, JournalError::BadPhase { .. }), "{e}");
    }
    // Skipping forward is allowed, going back is not.
    j.advance(c, Phase::Renamed).unwrap();
    let e = j.advance(c, Phase::TempWritten).unwrap_err();
    assert!(
        matches!(
            e,
            JournalError::BadPhase {
                from: Phase::Renamed,
                to: Phase::TempWritten,
                ..
            }
        ),
        "{e}"
    );
    j.advance(c, Phase::SourceDeleted).unwrap();
    assert!(matches!(
        j.advance(EntryId(999), Phase::Begun),
        Err(JournalError::Unknown { .. })
    ));
    assert_eq!(j.pending()[1].2, Phase::SourceDeleted);
}

#[test]
fn reopen_after_a_crash_lists_pending_in_order_with_the_last_phase() {
    let s = state();
    let (a, b, c, done);
    {
        let mut j = s.open();
        a = j.begin(rotate("app", 1)).unwrap();
        j.advance(a, Phase::Renamed).unwrap();
        b = j.begin(compress("0.log.7")).unwrap();
        j.advance(b, Phase::TempWritten).unwrap();
        done = j.begin(delete("0.log.3")).unwrap();
        c = j.begin(trim()).unwrap();
        j.complete(done).unwrap();
        // Dropped without completing: a crash.
    }
    let j = s.open();
    assert!(j.corrupt().is_empty());
    assert_eq!(
        j.pending(),
        vec![
            (a, rotate("app", 1), Phase::Renamed),
            (b, compress("0.log.7"), Phase::TempWritten),
            (c, trim(), Phase::Begun),
        ]
    );
    assert!(a < b && b < done && done < c);
}

#[test]
fn torn_temporary_files_are_removed_at_open() {
    let s = state();
    let id;
    {
        let mut j = s.open();
        id = j.begin(rotate("app", 0)).unwrap();
    }
    // A write of the next phase cut before its rename, a torn new
    // record, and a torn id reservation.
    let full = s.read(&record_name(id));
    s.write(&format!("{}.tmp", record_name(id)), &full[..full.len() / 2]);
    s.write(
        &format!("{}.tmp", record_name(EntryId(40))),
        b"{\"crc32\":\"00",
    );
    s.write("ids.json.tmp", b"");
    let mut j = s.open();
    assert!(j.corrupt().is_empty());
    assert_eq!(j.pending(), vec![(id, rotate("app", 0), Phase::Begun)]);
    assert_eq!(s.names(), vec![record_name(id), IDS.to_owned()]);
    // Id 40 may have been handed out before the crash: never again.
    assert!(j.begin(delete("x")).unwrap() > EntryId(40));
}

#[test]
fn corrupt_records_are_set_aside_and_reported() {
    let s = state();
    let (good, flipped, torn, moved);
    {
        let mut j = s.open();
        good = j.begin(rotate("app", 0)).unwrap();
        flipped = j.begin(rotate("b", 0)).unwrap();
        torn = j.begin(rotate("c", 0)).unwrap();
        moved = j.begin(rotate("d", 0)).unwrap();
    }
    // A flipped bit inside the record: the checksum catches it.
    let mut bytes = s.read(&record_name(flipped));
    let at = bytes.windows(6).position(|w| w == b"0.log.").unwrap();
    bytes[at] = b'1';
    s.write(&record_name(flipped), &bytes);
    // A record cut short.
    let bytes = s.read(&record_name(torn));
    s.write(&record_name(torn), &bytes[..bytes.len() - 5]);
    // A valid record under another id's name.
    std::fs::rename(
        s.dir.path().join(DIR).join(record_name(moved)),
        s.dir.path().join(DIR).join(record_name(EntryId(77))),
    )
    .unwrap();
    // Not JSON at all, empty, valid envelope with bad JSON, a bad name
    // in the intent, a phase of another kind of intent.
    s.write(&record_name(EntryId(80)), b"garbage");
    s.write(&record_name(EntryId(81)), b"");
    s.write(
        &record_name(EntryId(82)),
        &encode(&serde_json::json!({"v": "1", "id": 82})).unwrap(),
    );
    let bad_name = Record::V1 {
        id: EntryId(83),
        intent: delete(".."),
        phase: Phase::Begun,
    };
    s.write(&record_name(EntryId(83)), &encode(&bad_name).unwrap());
    let bad_phase = Record::V1 {
        id: EntryId(84),
        intent: delete("x"),
        phase: Phase::Renamed,
    };
    s.write(&record_name(EntryId(84)), &encode(&bad_phase).unwrap());
    let future = serde_json::json!({"v": "9", "id": 85});
    s.write(&record_name(EntryId(85)), &encode(&future).unwrap());

    let mut j = s.open();
    assert_eq!(j.pending(), vec![(good, rotate("app", 0), Phase::Begun)]);
    let reasons: Vec<(String, String)> = j
        .corrupt()
        .iter()
        .map(|e| match e {
            JournalError::Corrupt {
                path,
                set_aside: Some(to),
                reason,
            } => {
                assert_eq!(
                    to,
                    &path.with_file_name(format!(
                        "{}.corrupt",
                        path.file_name().unwrap().to_str().unwrap()
                    ))
                );
                assert!(to.exists() && !path.exists());
                let text = e.to_string();
                assert!(text.contains(&path.display().to_string()), "{text}");
                (
                    path.file_name().unwrap().to_str().unwrap().to_owned(),
                    format!("{reason:?}"),
                )
            }
            other => panic!("not a set-aside record: {other:?}"),
        })
        .collect();
    let expect = [
        (flipped, "Checksum"),
        (torn, "Envelope"),
        (EntryId(77), "IdMismatch"),
        (EntryId(80), "Envelope"),
        (EntryId(81), "Envelope"),
        (EntryId(82), "Json"),
        (EntryId(83), "Intent"),
        (EntryId(84), "Phase"),
        (EntryId(85), "Json"),
    ];
    assert_eq!(reasons.len(), expect.len(), "{reasons:?}");
    for ((name, reason), (id, want)) in reasons.iter().zip(expect) {
        assert_eq!(name, &record_name(id));
        assert!(reason.starts_with(want), "{name}: {reason}");
    }
    // New ids stay above every id seen, corrupt ones included.
    assert!(j.begin(delete("y")).unwrap() > EntryId(85));
    drop(j);

    // Reported again at the next start-up, not set aside twice.
    let before = s.names();
    let j = s.open();
    assert_eq!(s.names(), before);
    assert_eq!(j.corrupt().len(), expect.len());
    assert!(j.corrupt().iter().all(|e| matches!(
        e,
        JournalError::Corrupt {
            reason: CorruptReason::Earlier,
            ..
        }
    )));
    assert_eq!(j.pending().len(), 2);
}

#[test]
fn ids_never_repeat_across_restarts() {
    let s = state();
    let mut seen = Vec::new();
    for round in 0..4 {
        let mut j = s.open();
        // A small block, so reservations are crossed often.
        j.id_block = 3;
        for i in 0..5 {
            let id = j.begin(delete(&format!("f{round}-{i}"))).unwrap();
            if i % 2 == 0 {
                j.complete(id).unwrap();
            }
            seen.push(id);
        }
        if round == 2 {
            for (id, _, _) in j.pending() {
                j.complete(id).unwrap();
            }
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "ids increase and never repeat");

    // Even with every record completed, the reservation carries on.
    let s = state();
    let first = {
        let mut j = s.open();
        let id = j.begin(delete("a")).unwrap();
        j.complete(id).unwrap();
        id
    };
    let mut j = s.open();
    assert!(j.pending().is_empty());
    assert!(j.begin(delete("a")).unwrap() > first);
}

#[test]
fn a_corrupt_id_reservation_is_reported() {
    let s = state();
    {
        let mut j = s.open();
        let id = j.begin(delete("a")).unwrap();
        j.advance(id, Phase::Begun).unwrap();
    }
    s.write(IDS, b"{}");
    let mut j = s.open();
    assert_eq!(j.corrupt().len(), 1);
    assert!(s.names().contains(&format!("{IDS}.corrupt")));
    // Ids still continue above the records found.
    assert!(j.begin(delete("b")).unwrap() > EntryId(1));
    assert!(s.names().contains(&IDS.to_owned()));
}

#[test]
fn begin_refuses_bad_and_conflicting_intents() {
    let s = state();
    let mut j = s.open();
    for bad in [
        delete(".."),
        delete("a/b"),
        delete(""),
        Intent::Delete {
            dir: vec!["..".into()],
            file: "x".into(),
        },
        Intent::Compress {
            dir: vec!["d".into()],
            source: "s".into(),
            temp: "s".into(),
            target: "t".into(),
        },
    ] {
        let e = j.begin(bad).unwrap_err();
        assert!(matches!(e, JournalError::Intent { .. }), "{e}");
    }
    let a = j.begin(rotate("app", 0)).unwrap();
    // The same active file in the same directory is in flight.
    let e = j.begin(rotate("app", 1)).unwrap_err();
    assert!(
        matches!(e, JournalError::Conflict { other, .. } if other == a),
        "{e}"
    );
    // Another container is fine, and so is the same name elsewhere.
    j.begin(rotate("other", 1)).unwrap();
    j.complete(a).unwrap();
    j.begin(rotate("app", 1)).unwrap();
    assert!(j.pending().len() == 2);
}

#[test]
fn one_journal_per_state_directory() {
    let s = state();
    let j = s.open();
    let e = Journal::open(s.root.clone()).unwrap_err();
    assert!(matches!(e, JournalError::Locked { .. }), "{e}");
    drop(j);
    s.open();
}

#[test]
fn envelope_round_trip_and_rejections() {
    let rec = Record::V1 {
        id: EntryId(5),
        intent: trim(),
        phase: Phase::TempWritten,
    };
    let bytes = encode(&rec).unwrap();
    let Record::V1 { id, intent, phase } = decode(&bytes).unwrap();
    assert_eq!(
        (id, intent, phase),
        (EntryId(5), trim(), Phase::TempWritten)
    );
    for cut in 0..bytes.len() {
        assert!(decode::<Record>(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut plus = bytes.clone();
    plus[HEAD.len()] = b'+';
    assert!(decode::<Record>(&plus).is_err());
    assert_eq!(
        classify("00000000000000000005.json"),
        Name::Record(EntryId(5))
    );
    assert_eq!(
        classify("00000000000000000005.json.tmp"),
        Name::Temp(Some(EntryId(5)))
    );
    assert_eq!(classify("ids.json.tmp"), Name::Temp(None));
    assert_eq!(
        classify("00000000000000000005.json.corrupt.2"),
        Name::SetAside(Some(EntryId(5)))
    );
    assert_eq!(classify("5.json"), Name::Other);
    assert_eq!(classify("ids.json"), Name::Ids);
}
