//! Listing and opening an attempt's files as one consistent view.

use super::*;

/// The files of one attempt in read order, with the names of all attempts.
pub(super) fn list_attempt(
    target: &Target,
    attempt: u32,
) -> Result<(Vec<LogFile>, bool), ReadError> {
    let dir = target.dir.components();
    let entries = target
        .root
        .list_dir(&dir)
        .map_err(|source| ReadError::List {
            dir: dir.join("/"),
            source,
        })?;
    let groups = fileset::group(&entries);
    let closed = target.finished.load(std::sync::atomic::Ordering::Acquire)
        || groups.keys().any(|&a| a > attempt);
    Ok((groups.get(&attempt).cloned().unwrap_or_default(), closed))
}

/// The attempt's files, opened, as one consistent view.
pub(super) struct View {
    /// The files in read order, up to the first that may still be written.
    pub(super) opened: Vec<OpenLog>,
    /// A newer attempt exists, or the attempt is known to be finished.
    pub(super) closed: bool,
    /// The directory changed while it was read.
    pub(super) raced: bool,
    /// When a rotated file ends the view because it may still be written:
    /// the time to look again if no notification comes first.
    pub(super) held: Option<Nanos>,
}

/// The attempt's files, opened, as one consistent [`View`].
///
/// Listing and opening are not atomic: a rotation between them shows a
/// name that now holds another file, or none. A second listing that differs
/// from the first reveals it (a rotation adds a name) even when every open
/// succeeded; the caller then looks again.
///
/// A rotated file that the runtime still writes ends the view: between the
/// rename and `ReopenContainerLog`, and while the runtime writes out what it
/// had buffered for the old file after opening the new one, lines still
/// land in it. A reader that went on into the newer file would skip them
/// (a follower, or a consumer resuming from a cursor in the newer file).
/// The runtime closing the old file is a notification (`IN_CLOSE_WRITE`).
/// Files the reader is already in (`reading`) are never cut off: what it
/// read there was served.
pub(super) fn open_attempt(
    target: &Target,
    reading: &dyn Fn(&OpenLog) -> bool,
    known: &dyn Fn(FileKey, &str) -> Option<Known>,
) -> Result<View, ReadError> {
    let attempt = target.ctx.attempt;
    let (names, closed) = list_attempt(target, attempt)?;
    let dir = target.dir.components();
    let mut opened = Vec::new();
    let mut raced = false;
    for f in &names {
        match fileset::open_log_known(&target.root, &dir, f, known) {
            Ok(o) => opened.push(o),
            Err(e) if e.is_not_found() => raced = true,
            Err(e) => telemetry::file_skipped(&f.name, &e),
        }
    }
    if !matches!(list_attempt(target, attempt), Ok((again, _)) if again == names) {
        raced = true;
    }
    let mut closed = closed;
    let mut held = None;
    let last = opened.len().saturating_sub(1);
    let cut = opened[..last]
        .iter()
        .enumerate()
        .find_map(|(i, o)| written_until_log(o).map(|t| (i, t)));
    if let Some((i, until)) = cut.filter(|&(i, _)| !opened[i + 1..].iter().any(reading)) {
        opened.truncate(i + 1);
        held = Some(until);
        // Not finished while a file of it still grows.
        closed = false;
    }
    Ok(View {
        opened,
        closed,
        raced,
        held,
    })
}

/// [`fileset::written_until`] of an opened file.
pub(super) fn written_until_log(o: &OpenLog) -> Option<Nanos> {
    match &o.content {
        Content::Plain(f) => fileset::written_until(&o.file, f),
        Content::Compressed(_) | Content::Mem(_) | Content::Unread => None,
    }
}
