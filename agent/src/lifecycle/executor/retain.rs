//! The retention steps: head trims, deletions, and drops of events that
//! span files (see the module docs of [`super`]).

use super::*;

// === impl Executor ===

impl Executor {
    /// Drops the first `offset` bytes of the rotated, uncompressed file
    /// `file` in `dir`: copies the rest into a temporary file ([`temp_name`]), fsyncs it,
    /// and replaces `file` with it atomically. `offset` must be an event
    /// boundary (the planner's event marks are): 0, or just after a
    /// newline. An `offset` of 0 does nothing.
    ///
    /// # Errors
    ///
    /// [`LifecycleError::WrongFile`] for `N.log` or a compressed file,
    /// [`LifecycleError::NotBoundary`], [`LifecycleError::BeyondEnd`],
    /// [`LifecycleError::Changed`] when the file changed while it was
    /// copied (it is left as it was), a journal conflict, or a failed step.
    pub fn trim_head(
        &mut self,
        dir: [&str; 2],
        file: &str,
        offset: u64,
    ) -> Result<Trimmed, LifecycleError> {
        let path = self.path(&dir, file);
        if rotated_plain(file).is_none() {
            return Err(LifecycleError::WrongFile {
                path,
                want: "a rotated, uncompressed log file",
            });
        }
        let src = self
            .root
            .open_file(&at(&dir, file))
            .map_err(fs("trim: open the file"))?;
        check_boundary(&src.file, &path, src.size, offset)?;
        if offset == 0 {
            return Ok(Trimmed {
                bytes_freed: 0,
                kept_bytes: src.size,
            });
        }
        let temp = temp_name(&format!("{file}.trim"));
        let id = self.journal.begin(Intent::Trim {
            dir: dir.iter().map(|s| (*s).to_owned()).collect(),
            file: file.to_owned(),
            offset,
            temp: temp.clone(),
        })?;
        self.fault.hit(Fault::TrimBegun);
        let tail = Tail {
            src: &src.file,
            path: &path,
            size: src.size,
            offset,
        };
        if let Err(e) = self.write_tail(&dir, &tail, &temp, Fault::TrimPartialTemp) {
            self.abandon(id, &dir, &temp);
            return Err(e);
        }
        self.fault.hit(Fault::TrimAfterTemp);
        self.journal.advance(id, Phase::TempWritten)?;
        self.fault.hit(Fault::TrimTempWritten);
        if let Err(e) = self.root.replace(&at(&dir, &temp), &at(&dir, file)) {
            // Nothing was replaced.
            self.abandon(id, &dir, &temp);
            return Err(fs("trim: replace the file")(e));
        }
        self.sync_dir(&dir, "trim: sync the directory")?;
        self.fault.hit(Fault::TrimAfterReplace);
        self.journal.advance(id, Phase::Replaced)?;
        self.fault.hit(Fault::TrimReplaced);
        self.journal.complete(id)?;
        tracing::info!(path = %path.display(), offset, "trimmed");
        Ok(Trimmed {
            bytes_freed: offset,
            kept_bytes: src.size - offset,
        })
    }

    /// Copies `tail` into the new file `temp` and fsyncs it; `partial` is
    /// the fault point in the middle of the copy.
    pub(super) fn write_tail(
        &self,
        dir: &[&str],
        tail: &Tail<'_>,
        temp: &str,
        partial: Fault,
    ) -> Result<(), LifecycleError> {
        let Tail {
            src,
            path: src_path,
            size,
            offset,
        } = *tail;
        let mut out = self.create_temp(dir, temp, mode_of(src))?;
        let temp_path = self.path(dir, temp);
        let write_err = |source| LifecycleError::Io {
            step: "trim: write",
            path: temp_path.clone(),
            source,
        };
        let read_err = |source| LifecycleError::Io {
            step: "trim: read",
            path: src_path.to_owned(),
            source,
        };
        let mut input = src;
        input.seek(io::SeekFrom::Start(offset)).map_err(read_err)?;
        let mut input = input.take(size - offset);
        let mut buf = vec![0u8; CHUNK];
        let mut copied = 0u64;
        loop {
            let n = read_full(&mut input, &mut buf).map_err(read_err)?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).map_err(write_err)?;
            copied += n as u64;
            if self.fault.is_armed(partial) {
                self.fault.hit(partial);
            }
        }
        self.check_unchanged(src, src_path, size, offset + copied)?;
        out.sync_all().map_err(write_err)
    }

    // --- delete ---

    /// Deletes the log file `file` in `dir`. Any log file name is accepted,
    /// `N.log` of an exited attempt included: the caller (the planner)
    /// never names the file the runtime is writing. A file already gone
    /// counts as deleted.
    ///
    /// # Errors
    ///
    /// [`LifecycleError::WrongFile`] for a name that is not a log file, a
    /// journal conflict, or a failed step.
    pub fn delete(&mut self, dir: [&str; 2], file: &str) -> Result<Deleted, LifecycleError> {
        if fileset::classify(file).is_none() {
            return Err(LifecycleError::WrongFile {
                path: self.path(&dir, file),
                want: "a log file",
            });
        }
        let bytes_freed = match self.root.open_file(&at(&dir, file)) {
            Ok(o) => o.size,
            Err(e) if e.is_not_found() => 0,
            // A hard-linked file is still removed (only this name goes):
            // its size is not ours to count.
            Err(_) => 0,
        };
        let id = self.journal.begin(Intent::Delete {
            dir: dir.iter().map(|s| (*s).to_owned()).collect(),
            file: file.to_owned(),
        })?;
        self.fault.hit(Fault::DeleteBegun);
        let removed = match self.remove(&dir, file, "delete") {
            Ok(removed) => removed,
            Err(e) => {
                // Nothing was removed.
                self.journal.complete(id)?;
                return Err(e);
            }
        };
        self.sync_dir(&dir, "delete: sync the directory")?;
        self.fault.hit(Fault::DeleteAfterUnlink);
        self.journal.complete(id)?;
        tracing::info!(path = %self.path(&dir, file).display(), bytes = bytes_freed, "deleted");
        Ok(Deleted {
            bytes_freed: if removed { bytes_freed } else { 0 },
        })
    }

    // --- drop a span ---

    /// Deletes the log files `files` in `dir` (oldest first) and, with
    /// `trim` = `Some((file, offset))`, drops the first `offset` bytes of
    /// the rotated, uncompressed `file`, as one step: an event begins in
    /// `files` and ends in `file` (or in the next of `files`), as
    /// [`podlog_policy::Action::DropSpan`] plans it. `offset` is an event
    /// boundary, as for [`Executor::trim_head`]; 0 trims nothing.
    ///
    /// The rest of `file` is copied into a temporary file ([`temp_name`]) and fsynced
    /// first. Then, with listings held ([`SafeRoot::hold_listings`]), the
    /// temporary file replaces `file` and `files` are unlinked, back to
    /// back, with no fsync in between: a reader that lists the directory,
    /// opens the files and lists again (as the reader's file set does) gets
    /// them all as before or all as after, never the event's tail without
    /// its head, nor its head followed by another event. The directory is
    /// fsynced after. A kill anywhere is finished or rolled back by
    /// [`Executor::recover`], which runs before podlogd serves.
    ///
    /// # Errors
    ///
    /// [`LifecycleError::NothingToDelete`] for no file to delete;
    /// [`LifecycleError::WrongFile`] for a name that is not a log file, or a
    /// trim of `N.log` or a compressed file;
    /// [`LifecycleError::NotBoundary`], [`LifecycleError::BeyondEnd`];
    /// [`LifecycleError::Changed`] when `file` changed while it was copied
    /// (nothing is changed then); a journal conflict (a name twice among
    /// them included), or a failed step. A failure after the first change
    /// leaves the intent pending for recovery, which finishes the step.
    pub fn drop_span(
        &mut self,
        dir: [&str; 2],
        files: &[&str],
        trim: Option<(&str, u64)>,
    ) -> Result<Dropped, LifecycleError> {
        let trim = self.span_cut(&dir, files, trim)?;
        let mut bytes_freed = trim.as_ref().map_or(0, |c| c.offset);
        for f in files {
            // Gone: nothing to free; hard-linked: only this name goes.
            if let Ok(o) = self.root.open_file(&at(&dir, f)) {
                bytes_freed += o.size;
            }
        }
        let id = self.journal.begin(Intent::DropSpan {
            dir: dir.iter().map(|s| (*s).to_owned()).collect(),
            files: files.iter().map(|s| (*s).to_owned()).collect(),
            trim: trim.as_ref().map(|c| SpanTrim {
                file: c.file.to_owned(),
                offset: c.offset,
                temp: c.temp.clone(),
            }),
        })?;
        self.fault.hit(Fault::DropBegun);
        if let Some(c) = &trim {
            let tail = Tail {
                src: &c.src.file,
                path: &c.path,
                size: c.src.size,
                offset: c.offset,
            };
            if let Err(e) = self.write_tail(&dir, &tail, &c.temp, Fault::DropPartialTemp) {
                self.abandon(id, &dir, &c.temp);
                return Err(e);
            }
            self.fault.hit(Fault::DropAfterTemp);
            self.journal.advance(id, Phase::TempWritten)?;
            self.fault.hit(Fault::DropTempWritten);
        }
        self.replace_and_delete(id, &dir, files, trim.as_ref())?;
        self.sync_dir(&dir, "drop: sync the directory")?;
        self.fault.hit(Fault::DropAfterUnlink);
        self.journal.advance(id, Phase::Replaced)?;
        self.fault.hit(Fault::DropReplaced);
        self.journal.complete(id)?;
        tracing::info!(dir = %self.path(&dir, "").display(), ?files, trimmed = ?trim.as_ref().map(|c| (c.file, c.offset)), bytes = bytes_freed, "dropped events spanning files");
        Ok(Dropped { bytes_freed })
    }

    /// Checks the names of a span to drop and its trim point; the file to
    /// cut, opened (`None` without a trim, or a trim at 0).
    fn span_cut<'f>(
        &self,
        dir: &[&str; 2],
        files: &[&str],
        trim: Option<(&'f str, u64)>,
    ) -> Result<Option<Cut<'f>>, LifecycleError> {
        if files.is_empty() {
            return Err(LifecycleError::NothingToDelete {
                dir: self.path(dir, ""),
            });
        }
        if let Some(f) = files.iter().find(|f| fileset::classify(f).is_none()) {
            return Err(LifecycleError::WrongFile {
                path: self.path(dir, f),
                want: "a log file",
            });
        }
        let Some((file, offset)) = trim else {
            return Ok(None);
        };
        let path = self.path(dir, file);
        if rotated_plain(file).is_none() {
            return Err(LifecycleError::WrongFile {
                path,
                want: "a rotated, uncompressed log file",
            });
        }
        let src = self
            .root
            .open_file(&at(dir, file))
            .map_err(fs("drop: open the file to trim"))?;
        check_boundary(&src.file, &path, src.size, offset)?;
        Ok((offset > 0).then(|| Cut {
            file,
            offset,
            src,
            path,
            temp: temp_name(&format!("{file}.trim")),
        }))
    }

    /// The span's changes, with listings held off: the trimmed copy
    /// replaces its file, then the files go, oldest first. On a failure
    /// before anything changed the intent is completed or abandoned; after,
    /// it stays pending for recovery.
    fn replace_and_delete(
        &mut self,
        id: EntryId,
        dir: &[&str; 2],
        files: &[&str],
        trim: Option<&Cut<'_>>,
    ) -> Result<(), LifecycleError> {
        let root = self.root.clone();
        let held = root.hold_listings();
        if let Some(c) = trim {
            if let Err(e) = self.root.replace(&at(dir, &c.temp), &at(dir, c.file)) {
                // Nothing was replaced or deleted.
                drop(held);
                self.abandon(id, dir, &c.temp);
                return Err(fs("drop: replace the trimmed file")(e));
            }
            self.fault.hit(Fault::DropAfterReplace);
        }
        for (k, f) in files.iter().enumerate() {
            if let Err(e) = self.remove(dir, f, "drop: delete") {
                drop(held);
                if trim.is_none() && k == 0 {
                    // Nothing was deleted.
                    self.journal.complete(id)?;
                }
                return Err(e);
            }
        }
        drop(held);
        Ok(())
    }
}
