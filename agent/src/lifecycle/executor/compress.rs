//! Compression of rotated files (see the module docs of [`super`]).

use super::*;
use crate::fs::compressed::PieceWriter;

// === impl Executor ===

impl Executor {
    /// Compresses the rotated file `file` in `dir` with `codec`: writes
    /// a temporary file ([`temp_name`] of `<file><ext>`; `ext` is `.gz` for
    /// gzip, `.zst` for zstd), fsyncs
    /// it, renames it to `<file><ext>` (never replacing anything), then
    /// deletes `file`.
    ///
    /// # Errors
    ///
    /// [`LifecycleError::Codec`] for `none`; [`LifecycleError::WrongFile`]
    /// when `file` is not a rotated, uncompressed log file (`N.log` itself
    /// is never compressed); [`LifecycleError::Exists`] when a compressed
    /// copy of `file` exists, in either codec (the reader would serve only
    /// one of them); [`LifecycleError::Changed`] when `file` changed while
    /// it was read (it is then left as it was); a journal conflict, or a
    /// failed step.
    pub fn compress(
        &mut self,
        dir: [&str; 2],
        file: &str,
        codec: Compress,
    ) -> Result<Compressed, LifecycleError> {
        let codec = match codec {
            Compress::Gzip => Codec::Gzip,
            Compress::Zstd => Codec::Zstd,
            Compress::None => {
                return Err(LifecycleError::Codec {
                    codec: "none",
                    reason: "is no codec: nothing to compress with",
                })
            }
        };
        if rotated_plain(file).is_none() {
            return Err(LifecycleError::WrongFile {
                path: self.path(&dir, file),
                want: "a rotated, uncompressed log file",
            });
        }
        let target = format!("{file}{}", codec.ext());
        let temp = temp_name(&target);
        for twin in Codec::ALL.map(|c| format!("{file}{}", c.ext())) {
            if self.taken(&dir, &twin)? {
                return Err(LifecycleError::Exists {
                    path: self.path(&dir, &twin),
                });
            }
        }
        let id = self.journal.begin(Intent::Compress {
            dir: dir.iter().map(|s| (*s).to_owned()).collect(),
            source: file.to_owned(),
            temp: temp.clone(),
            target: target.clone(),
        })?;
        self.fault.hit(Fault::CompressBegun);
        let (source_bytes, compressed_bytes) = match self.write_compressed(&dir, file, &temp, codec)
        {
            Ok(sizes) => sizes,
            Err(e) => {
                self.abandon(id, &dir, &temp);
                return Err(e);
            }
        };
        self.fault.hit(Fault::CompressAfterTemp);
        self.journal.advance(id, Phase::TempWritten)?;
        self.fault.hit(Fault::CompressTempWritten);
        if let Err(e) = self.root.rename(&at(&dir, &temp), &at(&dir, &target)) {
            self.abandon(id, &dir, &temp);
            return Err(self.rename_failed(
                e,
                &dir,
                &target,
                "compress: rename the temporary file",
            ));
        }
        self.sync_dir(&dir, "compress: sync the directory")?;
        self.fault.hit(Fault::CompressAfterRename);
        self.journal.advance(id, Phase::Renamed)?;
        self.fault.hit(Fault::CompressRenamed);
        self.remove(&dir, file, "compress: delete the plain file")?;
        self.sync_dir(&dir, "compress: sync the directory")?;
        self.fault.hit(Fault::CompressAfterUnlink);
        self.journal.advance(id, Phase::SourceDeleted)?;
        self.fault.hit(Fault::CompressSourceDeleted);
        self.journal.complete(id)?;
        tracing::info!(path = %self.path(&dir, &target).display(), ?codec, source_bytes, compressed_bytes, "compressed");
        Ok(Compressed {
            target,
            source_bytes,
            compressed_bytes,
        })
    }

    /// Writes `source` compressed with `codec` to the new file `temp` and
    /// fsyncs it; returns the plain and the compressed size.
    fn write_compressed(
        &self,
        dir: &[&str],
        source: &str,
        temp: &str,
        codec: Codec,
    ) -> Result<(u64, u64), LifecycleError> {
        let src = self
            .root
            .open_file(&at(dir, source))
            .map_err(fs("compress: open the plain file"))?;
        let out = self.create_temp(dir, temp, mode_of(&src.file))?;
        let src_path = self.path(dir, source);
        let temp_path = self.path(dir, temp);
        let write_err = |source| LifecycleError::Io {
            step: "compress: write",
            path: temp_path.clone(),
            source,
        };
        // Seekable: pieces and their index (see `fs::compressed`).
        let mut enc =
            PieceWriter::new(codec, BufWriter::with_capacity(CHUNK, out)).map_err(write_err)?;
        let mut input = (&src.file).take(src.size);
        let mut buf = vec![0u8; CHUNK];
        let mut read = 0u64;
        loop {
            let n = read_full(&mut input, &mut buf).map_err(|source| LifecycleError::Io {
                step: "compress: read",
                path: src_path.clone(),
                source,
            })?;
            if n == 0 {
                break;
            }
            enc.write_all(&buf[..n]).map_err(write_err)?;
            read += n as u64;
            if self.fault.is_armed(Fault::CompressPartialTemp) {
                // Put what is compressed so far on disk, then die.
                enc.flush().map_err(write_err)?;
                self.fault.hit(Fault::CompressPartialTemp);
            }
        }
        self.check_unchanged(&src.file, &src_path, src.size, read)?;
        let out = enc
            .finish()
            .and_then(|w| w.into_inner().map_err(io::IntoInnerError::into_error))
            .map_err(write_err)?;
        out.sync_all().map_err(write_err)?;
        let compressed = out.metadata().map_err(write_err)?.len();
        Ok((src.size, compressed))
    }
}
