//! Recovery: steps a crash cut short are finished or rolled back from
//! what they left on disk, and a step whose recovery keeps failing is given
//! up.

use super::*;

/// Records a compression to `X<ext>` in the journal at `phase`, as a crash
/// would have left it.
fn interrupted_compress(s: &Setup, ext: &str, phase: Phase) {
    let mut j = s.journal();
    let id = j
        .begin(Intent::Compress {
            dir: DIR.iter().map(|d| (*d).to_owned()).collect(),
            source: X.into(),
            temp: format!("{X}{ext}.tmp"),
            target: format!("{X}{ext}"),
        })
        .unwrap();
    if phase != Phase::Begun {
        j.advance(id, phase).unwrap();
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(bytes, 1).unwrap()
}

#[test]
fn recovery_checks_a_compressed_file_before_deleting_its_source() {
    let cases = [
        ("whole", None, Recovered::Finished),
        ("cut short", Some(0usize), Recovered::RolledBack),
        ("other content", Some(1), Recovered::RolledBack),
        ("the other codec", Some(2), Recovered::RolledBack),
    ];
    // Each extension with its compressor, and the other codec's.
    let codecs: [(&str, Transform, Transform); 2] = [(".gz", gzip, zstd), (".zst", zstd, gzip)];
    for (ext, compress, other) in codecs {
        for (what, broken, want) in cases {
            let what = format!("{ext}: {what}");
            let s = setup();
            let mut ex = s.executor();
            let plain = rotated_file(&s, &mut ex, 200);
            drop(ex);
            let archive = match broken {
                None => compress(&plain),
                Some(0) => compress(&plain)[..100].to_vec(),
                Some(1) => compress(&plain[1..]),
                Some(_) => other(&plain),
            };
            std::fs::write(s.dir.join(format!("{X}{ext}")), &archive).unwrap();
            interrupted_compress(&s, ext, Phase::Renamed);
            let mut ex = s.executor();
            let reports = ex.recover();
            assert_eq!(reports.len(), 1, "{what}");
            assert_eq!(reports[0].outcome.as_ref().ok(), Some(&want), "{what}");
            let kept = if want == Recovered::Finished {
                format!("{X}{ext}")
            } else {
                X.to_owned()
            };
            assert_eq!(s.names(), vec!["0.log".to_owned(), kept], "{what}");
            assert_eq!(s.served(), s.rt.written(), "{what}");
            assert!(!ex.has_pending(), "{what}");
            assert!(ex.recover().is_empty());
        }
    }
}

#[test]
fn recovery_renames_a_whole_zstd_temporary_file() {
    let s = setup();
    let mut ex = s.executor();
    let plain = rotated_file(&s, &mut ex, 200);
    drop(ex);
    std::fs::write(s.dir.join(format!("{X}.zst.tmp")), zstd(&plain)).unwrap();
    interrupted_compress(&s, ".zst", Phase::TempWritten);
    let mut ex = s.executor();
    let reports = ex.recover();
    assert_eq!(reports[0].outcome.as_ref().ok(), Some(&Recovered::Finished));
    assert_eq!(s.names(), vec!["0.log".to_owned(), format!("{X}.zst")]);
    assert_eq!(unzstd(&s.read(&format!("{X}.zst"))), plain);
    assert_eq!(s.served(), s.rt.written());
    assert!(!ex.has_pending());
}

#[test]
fn recovery_removes_a_partial_zstd_temporary_file() {
    let s = setup();
    let mut ex = s.executor();
    let plain = rotated_file(&s, &mut ex, 200);
    drop(ex);
    let z = zstd(&plain);
    std::fs::write(s.dir.join(format!("{X}.zst.tmp")), &z[..z.len() / 2]).unwrap();
    interrupted_compress(&s, ".zst", Phase::Begun);
    let mut ex = s.executor();
    let reports = ex.recover();
    assert_eq!(
        reports[0].outcome.as_ref().ok(),
        Some(&Recovered::RolledBack)
    );
    assert_eq!(s.names(), vec!["0.log".to_owned(), X.to_owned()]);
    assert_eq!(s.read(X), plain);
    assert_eq!(s.served(), s.rt.written());
    assert!(!ex.has_pending());
}

#[test]
fn recovery_of_a_rotation_the_runtime_refuses_renames_back() {
    let s = setup();
    s.rt.write(3);
    std::fs::rename(s.dir.join("0.log"), s.dir.join(X)).unwrap();
    {
        let mut j = s.journal();
        let id = j
            .begin(Intent::Rotate {
                dir: DIR.iter().map(|d| (*d).to_owned()).collect(),
                active: "0.log".into(),
                rotated: X.into(),
                container_id: "c1".into(),
            })
            .unwrap();
        j.advance(id, Phase::Renamed).unwrap();
    }
    s.rt.answer(Answer::Refuse);
    let mut ex = s.executor();
    let reports = ex.recover();
    assert_eq!(
        reports[0].outcome.as_ref().ok(),
        Some(&Recovered::RolledBack)
    );
    s.rt.write(1);
    assert_eq!(s.names(), vec!["0.log".to_owned()]);
    assert_eq!(s.read("0.log"), s.rt.written());
    assert!(!ex.has_pending());
}

#[test]
fn a_step_whose_recovery_keeps_failing_is_given_up() {
    let s = setup();
    let mut ex = s.executor();
    let plain = rotated_file(&s, &mut ex, 10);
    drop(ex);
    // Interrupted as it began, a directory planted under the temporary
    // name it recorded (as old-style names allowed): removing it fails at
    // every recovery.
    interrupted_compress(&s, ".gz", Phase::Begun);
    std::fs::create_dir(s.dir.join(format!("{X}.gz.tmp"))).unwrap();
    let mut ex = s.executor();
    for _ in 1..recover::RECOVERY_TRIES {
        let r = ex.recover();
        assert!(r[0].outcome.is_err(), "{:?}", r[0]);
        assert!(ex.has_pending());
    }
    let r = ex.recover();
    assert!(
        matches!(r[0].outcome, Ok(Recovered::RolledBack)),
        "{:?}",
        r[0]
    );
    assert!(!ex.has_pending());
    // The plain file is served as before, the directory left alone, and
    // nothing is held up: the file compresses.
    assert_eq!(s.read(X), plain);
    assert!(s.dir.join(format!("{X}.gz.tmp")).is_dir());
    ex.compress(DIR, X, Compress::Gzip).unwrap();
    assert_eq!(gunzip(&s.read(&format!("{X}.gz"))), plain);
}
