//! Rotation that cannot be redirected (see `guard`): what is planted
//! under the active name, or swapped in around a rename or a reopen, is
//! never reopened onto, and is reported.

use super::*;

/// A file outside the log root that a redirected runtime would append to.
fn canary(s: &Setup) -> PathBuf {
    let p = s._tmp.path().join("canary");
    std::fs::write(&p, b"canary\n").unwrap();
    p
}

#[test]
fn the_runtime_reopens_onto_a_file_podlogd_made_with_the_rotated_files_mode() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = setup();
    let mut ex = s.executor();
    s.rt.write(2);
    std::fs::set_permissions(s.dir.join("0.log"), std::fs::Permissions::from_mode(0o604)).unwrap();
    ex.rotate(DIR, 0, "c1", T0).unwrap();
    assert_eq!(s.rt.state.lock().unwrap().seen, vec![Some(0o604)]);
    s.rt.write(1);
    assert_eq!(s.served(), s.rt.written());
}

#[test]
fn a_name_planted_after_the_rename_is_never_reopened_onto() {
    let s = setup();
    let out = canary(&s);
    let mut ex = s.executor();
    s.rt.write(3);
    // The runtime away: the rotation waits, renamed.
    s.rt.answer(Answer::Unavailable);
    ex.rotate(DIR, 0, "c1", T0).unwrap_err();
    assert_eq!(s.names(), vec![X.to_owned()]);
    // Planted meanwhile: a symlink under the name.
    std::os::unix::fs::symlink(&out, s.dir.join("0.log")).unwrap();
    s.rt.answer(Answer::Reopen);
    let reports = ex.recover();
    assert!(
        matches!(&reports[0].outcome, Err(LifecycleError::Redirected { found, .. }) if found == "a symlink"),
        "{:?}",
        reports[0]
    );
    assert_eq!(s.rt.state.lock().unwrap().reopens, 0, "never asked");
    let reason = ex.paused().reason(DIR[0], DIR[1]).expect("paused");
    assert!(
        reason.starts_with("planted_log_file: a symlink was planted"),
        "{reason}"
    );
    assert!(
        reason.ends_with(&format!("; it points to {:?}", out.display().to_string())),
        "{reason}"
    );
    // The runtime writes on into the rotated file; nothing reaches the
    // canary, whatever the rounds.
    s.rt.write(2);
    for _ in 0..3 {
        assert!(ex.recover()[0].outcome.is_err());
    }
    assert_eq!(std::fs::read(&out).unwrap(), b"canary\n");
    assert_eq!(s.served(), s.rt.written());
    // Gone: the rotation finishes and the pause ends.
    std::fs::remove_file(s.dir.join("0.log")).unwrap();
    assert!(matches!(ex.recover()[0].outcome, Ok(Recovered::Finished)));
    assert!(ex.paused().reason(DIR[0], DIR[1]).is_none());
    assert!(!ex.has_pending());
    s.rt.write(2);
    assert_eq!(s.served(), s.rt.written());
    assert_eq!(std::fs::read(&out).unwrap(), b"canary\n");
}

#[test]
fn a_name_replaced_during_the_reopen_is_taken_back() {
    let s = setup();
    let out = canary(&s);
    let mut ex = s.executor();
    s.rt.write(3);
    s.rt.state.lock().unwrap().plant = Some((out.clone(), false));
    ex.rotate(DIR, 0, "c1", T0).unwrap();
    // Reopened twice: onto the symlink that won the race, then onto
    // podlogd's file again; the name is a plain file.
    assert_eq!(s.rt.state.lock().unwrap().reopens, 2);
    assert!(std::fs::symlink_metadata(s.dir.join("0.log"))
        .unwrap()
        .file_type()
        .is_file());
    assert!(ex.paused().reason(DIR[0], DIR[1]).is_none());
    // What the runtime wrote while redirected is bounded by the second
    // reopen; nothing after it goes out.
    let leaked = std::fs::read(&out).unwrap().len();
    s.rt.write(5);
    assert_eq!(std::fs::read(&out).unwrap().len(), leaked);
    assert_eq!(lines(&s.read("0.log")), 6);
}

#[test]
fn a_name_replaced_at_every_reopen_pauses_the_rotation() {
    let s = setup();
    let out = canary(&s);
    let mut ex = s.executor();
    s.rt.write(3);
    s.rt.state.lock().unwrap().plant = Some((out.clone(), true));
    let e = ex.rotate(DIR, 0, "c1", T0).unwrap_err();
    assert!(matches!(e, LifecycleError::Redirected { .. }), "{e:?}");
    let reason = ex.paused().reason(DIR[0], DIR[1]).expect("paused");
    assert!(reason.starts_with("log_file_replaced:"), "{reason}");
    assert!(ex.has_pending());
    assert_eq!(s.rt.state.lock().unwrap().reopens, 3);
    // The name is taken back for the next try.
    assert!(std::fs::symlink_metadata(s.dir.join("0.log")).is_err());
    // The attacker stops; recovery takes the name back and finishes.
    s.rt.state.lock().unwrap().plant = None;
    assert!(matches!(ex.recover()[0].outcome, Ok(Recovered::Finished)));
    assert!(ex.paused().reason(DIR[0], DIR[1]).is_none());
    let leaked = std::fs::read(&out).unwrap().len();
    s.rt.write(4);
    assert_eq!(std::fs::read(&out).unwrap().len(), leaked);
    assert!(std::fs::symlink_metadata(s.dir.join("0.log"))
        .unwrap()
        .file_type()
        .is_file());
}

#[test]
fn a_planted_active_name_is_never_rotated_and_healed_once_free() {
    let s = setup();
    let out = canary(&s);
    let mut ex = s.executor();
    s.rt.write(3);
    // The runtime's file loses its name to a symlink.
    let tmp = s.dir.join(".planted");
    std::os::unix::fs::symlink(&out, &tmp).unwrap();
    std::fs::rename(&tmp, s.dir.join("0.log")).unwrap();
    let e = ex.rotate(DIR, 0, "c1", T0).unwrap_err();
    assert!(matches!(e, LifecycleError::Redirected { .. }), "{e:?}");
    assert!(ex
        .paused()
        .reason(DIR[0], DIR[1])
        .unwrap()
        .starts_with("planted_log_file"));
    assert_eq!(s.names(), vec!["0.log".to_owned()], "nothing renamed");
    assert!(!ex.has_pending());
    // Still there: healing refuses, nothing is reopened.
    assert!(matches!(
        ex.heal(DIR, 0, "c1"),
        Err(LifecycleError::Redirected { .. })
    ));
    assert_eq!(s.rt.state.lock().unwrap().reopens, 0);
    // Gone: podlogd makes the file and the runtime reopens onto it.
    std::fs::remove_file(s.dir.join("0.log")).unwrap();
    ex.heal(DIR, 0, "c1").unwrap();
    assert!(ex.paused().reason(DIR[0], DIR[1]).is_none());
    s.rt.write(2);
    assert_eq!(
        lines(&s.read("0.log")),
        3,
        "the line in flight and the two after"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"canary\n");
    // Not paused: healing does nothing; rotation goes on.
    ex.heal(DIR, 0, "c1").unwrap();
    ex.rotate(DIR, 0, "c1", T0).unwrap();
}

#[test]
fn a_symlink_the_runtime_opened_at_its_start_is_taken_back() {
    let s = setup();
    let out = canary(&s);
    let mut ex = s.executor();
    // There before the runtime opened the name: it writes where it points.
    std::os::unix::fs::symlink(&out, s.dir.join("0.log")).unwrap();
    s.rt.write(2);
    let redirected = std::fs::read(&out).unwrap().len();
    assert!(
        redirected > b"canary\n".len(),
        "the fake runtime follows it"
    );
    assert!(matches!(
        ex.check_active(&DIR, "0.log"),
        Err(LifecycleError::Redirected { .. })
    ));
    ex.take_back(DIR, 0, "c1").unwrap();
    assert!(ex.paused().reason(DIR[0], DIR[1]).is_none());
    assert_eq!(s.rt.state.lock().unwrap().reopens, 1);
    let m = std::fs::symlink_metadata(s.dir.join("0.log")).unwrap();
    assert!(m.file_type().is_file());
    // The line in flight at the reopen was the last one redirected.
    let cut = std::fs::read(&out).unwrap().len();
    s.rt.write(3);
    assert_eq!(std::fs::read(&out).unwrap().len(), cut);
    assert_eq!(
        lines(&s.read("0.log")),
        4,
        "the reopen's second line and three"
    );

    // A directory cannot be taken back: the container stays paused.
    let s = setup();
    let mut ex = s.executor();
    std::fs::create_dir(s.dir.join("0.log")).unwrap();
    assert!(ex.check_active(&DIR, "0.log").is_err());
    assert!(ex.take_back(DIR, 0, "c1").is_err());
    assert!(ex.paused().reason(DIR[0], DIR[1]).is_some());
    assert_eq!(s.rt.state.lock().unwrap().reopens, 0);
}

#[test]
fn a_planted_symlinks_target_is_reported_escaped_and_bounded() {
    use std::os::unix::ffi::OsStrExt as _;
    let s = setup();
    let mut ex = s.executor();
    let target = format!("/x\n2026-12-07T00:00:00Z INFO forged{}", "y".repeat(400));
    std::os::unix::fs::symlink(
        std::ffi::OsStr::from_bytes(target.as_bytes()),
        s.dir.join("0.log"),
    )
    .unwrap();
    assert!(ex.check_active(&DIR, "0.log").is_err());
    let reason = ex.paused().reason(DIR[0], DIR[1]).unwrap();
    assert!(!reason.contains('\n'), "{reason}");
    assert!(reason.contains("it points to \"/x\\n2026"), "{reason}");
    assert!(reason.ends_with("\"…"), "{reason}");
    assert!(reason.len() < 600, "{}", reason.len());
}

#[test]
fn a_symlink_swapped_in_just_before_the_rename_lends_the_new_file_nothing() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let s = setup();
    let out = canary(&s);
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut ex = s.executor();
    // What a rotation finds after its rename when a symlink took the
    // live name between the check and the rename: the symlink (lstat
    // mode 0777) under the rotated name, the name free.
    std::os::unix::fs::symlink(&out, s.dir.join(X)).unwrap();
    let (made, new) = ex.own_active(&DIR, "0.log", Some(X)).unwrap();
    assert!(new);
    let m = std::fs::symlink_metadata(s.dir.join("0.log")).unwrap();
    assert!(m.file_type().is_file());
    assert_eq!(m.ino(), made.ino);
    assert_eq!(m.mode() & 0o777, DEFAULT_MODE, "not the symlink's 0777");
    let reason = ex.paused().reason(DIR[0], DIR[1]).expect("reported");
    assert!(
        reason.starts_with("planted_log_file: a symlink was renamed over"),
        "{reason}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"canary\n");
    // The runtime's own rotated file lends its mode, without a report.
    let s = setup();
    let mut ex = s.executor();
    s.rt.write(1);
    std::fs::set_permissions(s.dir.join("0.log"), std::fs::Permissions::from_mode(0o604)).unwrap();
    std::fs::rename(s.dir.join("0.log"), s.dir.join(X)).unwrap();
    ex.own_active(&DIR, "0.log", Some(X)).unwrap();
    let m = std::fs::metadata(s.dir.join("0.log")).unwrap();
    assert_eq!(m.mode() & 0o777, 0o604);
    assert!(ex.paused().reason(DIR[0], DIR[1]).is_none());
}
