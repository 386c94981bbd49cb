//! The files of a container attempt, read as one ordered stream.
//!
//! In a container's log directory the runtime writes `N.log` for attempt
//! `N`; rotation (the kubelet's or podlog's) renames it to
//! `N.log.<UTC timestamp>` and may compress that to `….gz` (gzip) or
//! `….zst` (zstd), which are decompressed when opened ([`decoder`]). The
//! rotated files, sorted by their suffix, come before the active file.
//! `.tmp` leftovers of an interrupted compression are ignored, and when both
//! a plain and a compressed copy of one rotation exist the plain one is read.
//! Files compressed with anything else (`.xz`, `.bz2`, `.lz4`) are not read.
//!
//! A file is identified for cursors by the fingerprint of its first line,
//! which survives renames and compression, and for followers by
//! `(dev, inode)` plus that fingerprint, since inodes are reused.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::fs::FileExt as _;

use crate::cri::Nanos;
use crate::fs::compressed::{self, Compressed, Refused};
use crate::fs::safe_open::{FileKey, Kind, SafeOpenError, SafeRoot};

/// How many leading bytes at most the fingerprint covers.
pub(crate) const FINGERPRINT_BYTES: usize = 256;

/// Last extensions of rotated files compressed with something podlog does
/// not read: such a file is never served as if it were text.
const UNREAD_CODECS: [&str; 3] = ["xz", "bz2", "lz4"];

/// How a rotated file is compressed, by its name's last extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Codec {
    /// gzip (`.gz`), read across concatenated members.
    Gzip,
    /// zstd (`.zst`), read across concatenated frames.
    Zstd,
}

/// One log file of an attempt, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFile {
    pub name: String,
    pub(crate) attempt: u32,
    /// The rotation suffix (`20261121-050000`), `None` for the active file.
    pub(crate) rotated: Option<String>,
    /// Whether the name ends in a codec's extension ([`LogFile::codec`]).
    pub(crate) compressed: bool,
}

// === impl Codec ===

impl Codec {
    /// Every codec podlog reads, in the order the reader prefers twins.
    pub(crate) const ALL: [Codec; 2] = [Codec::Gzip, Codec::Zstd];

    /// The extension of a file compressed with it, with its dot.
    pub(crate) fn ext(self) -> &'static str {
        match self {
            Codec::Gzip => ".gz",
            Codec::Zstd => ".zst",
        }
    }

    /// `name` without its codec's extension, and the codec; `None` when
    /// `name` does not end in one.
    pub(crate) fn strip(name: &str) -> Option<(&str, Codec)> {
        Codec::ALL
            .into_iter()
            .find_map(|c| name.strip_suffix(c.ext()).map(|stem| (stem, c)))
    }

    /// A reader of what `raw` decompresses to, to its end: every gzip member
    /// or zstd frame in turn. The caller bounds how much it reads. A file
    /// cut short, or corrupt, fails with an error when the reader gets
    /// there.
    ///
    /// # Errors
    ///
    /// zstd's decompression context cannot be allocated.
    pub(crate) fn decoder<'a, R: Read + 'a>(self, raw: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            Codec::Zstd => Box::new(zstd::stream::read::Decoder::new(raw)?),
        })
    }
}

// === impl LogFile ===

impl LogFile {
    /// How the file is compressed; `None` for a plain file.
    pub(crate) fn codec(&self) -> Option<Codec> {
        if !self.compressed {
            return None;
        }
        Codec::strip(&self.name).map(|(_, c)| c)
    }
}

/// The content of the log file `file`, read from `raw` (the opened file):
/// decompressed with the file's codec ([`Codec::decoder`]), or `raw` itself
/// for a plain file.
///
/// # Errors
///
/// The decoder cannot be set up (see [`Codec::decoder`]).
pub(crate) fn decoder<'a, R: Read + 'a>(file: &LogFile, raw: R) -> io::Result<Box<dyn Read + 'a>> {
    match file.codec() {
        Some(c) => c.decoder(raw),
        None => Ok(Box::new(raw)),
    }
}

/// What a directory entry name means, if it is a log file.
pub(crate) fn classify(name: &str) -> Option<LogFile> {
    let dot = name.find(".log")?;
    let attempt_str = &name[..dot];
    if attempt_str.is_empty()
        || attempt_str.len() > 9
        || !attempt_str.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let attempt: u32 = attempt_str.parse().ok()?;
    let rest = &name[dot + 4..];
    if rest.is_empty() {
        return Some(LogFile {
            name: name.to_owned(),
            attempt,
            rotated: None,
            compressed: false,
        });
    }
    let suffix = rest.strip_prefix('.')?;
    if suffix.ends_with(".tmp") || suffix.is_empty() {
        return None;
    }
    let (suffix, compressed) = match Codec::strip(suffix) {
        Some((s, _)) => (s, true),
        None => {
            // Compressed with something podlog cannot read: never served as
            // if it were text. A bare `N.log.zst` is no rotation either.
            let last = suffix.rsplit('.').next().unwrap_or(suffix);
            if last == "zst" || UNREAD_CODECS.contains(&last) {
                return None;
            }
            (suffix, false)
        }
    };
    if suffix.is_empty()
        || !suffix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return None;
    }
    Some(LogFile {
        name: name.to_owned(),
        attempt,
        rotated: Some(suffix.to_owned()),
        compressed,
    })
}

/// A container's log files by attempt, each attempt's in read order.
pub type Groups = BTreeMap<u32, Vec<LogFile>>;

/// Groups a container directory's entries by attempt, each in read order.
pub fn group(entries: &[(String, Kind)]) -> Groups {
    let mut by: BTreeMap<u32, Vec<LogFile>> = BTreeMap::new();
    for (name, kind) in entries {
        if *kind != Kind::File {
            continue;
        }
        if let Some(f) = classify(name) {
            by.entry(f.attempt).or_default().push(f);
        }
    }
    for files in by.values_mut() {
        files.sort_by(|a, b| match (&a.rotated, &b.rotated) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (Some(x), Some(y)) => x
                .cmp(y)
                .then(a.compressed.cmp(&b.compressed))
                .then_with(|| a.name.cmp(&b.name)),
        });
        // A plain and a compressed copy of one rotation: keep the plain one;
        // two compressed ones (`.gz` and `.zst`): keep the first by name.
        files
            .dedup_by(|later, earlier| later.rotated.is_some() && later.rotated == earlier.rotated);
    }
    by
}

/// The fingerprint of a file's first bytes: its first line including the
/// `\n`, at most [`FINGERPRINT_BYTES`]. `None` while the file holds fewer
/// bytes than that and no complete line.
pub(crate) fn fingerprint_of(head: &[u8]) -> Option<u64> {
    let n = match memchr::memchr(b'\n', &head[..head.len().min(FINGERPRINT_BYTES)]) {
        Some(i) => i + 1,
        None if head.len() >= FINGERPRINT_BYTES => FINGERPRINT_BYTES,
        None => return None,
    };
    Some(fnv1a64(&[&head[..n]]))
}

/// The readable content of one log file.
#[derive(Debug)]
pub enum Content {
    /// A plain file, read with `pread`.
    Plain(std::fs::File),
    /// A compressed file, read through a bounded window (see
    /// [`super::compressed`]).
    Compressed(Box<Compressed>),
    /// Bytes in memory (a descriptor given up, or a test's content).
    Mem(std::sync::Arc<Vec<u8>>),
    /// A compressed file a reader already knew (see [`open_log_known`]):
    /// its identity, size and fingerprint, not decompressed again. It
    /// cannot be read; open it with [`open_log`] to read it.
    Unread,
}

/// An opened log file with its identity.
#[derive(Debug)]
pub struct OpenLog {
    pub(crate) file: LogFile,
    pub content: Content,
    pub(crate) key: FileKey,
    /// Current size (decompressed size for compressed files).
    pub size: u64,
    pub(crate) fingerprint: Option<u64>,
}

/// Why a log file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenLogError {
    #[error(transparent)]
    Open(#[from] SafeOpenError),
    #[error("read {name}: {source}")]
    Read {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name}: {reason}")]
    Refused {
        name: String,
        #[source]
        reason: Refused,
    },
}

impl OpenLogError {
    /// True when the file does not exist (any more).
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, OpenLogError::Open(e) if e.is_not_found())
    }
}

// === impl Content ===

impl Content {
    /// Reads at `offset` into `buf`; returns 0 at the end.
    ///
    /// # Errors
    ///
    /// The `pread` error of a plain file.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Content::Plain(f) => loop {
                match f.read_at(buf, offset) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    r => return r,
                }
            },
            Content::Compressed(c) => c.read_at(offset, buf),
            Content::Mem(v) => {
                let len = v.len() as u64;
                if offset >= len {
                    return Ok(0);
                }
                let start = offset as usize;
                let n = buf.len().min(v.len() - start);
                buf[..n].copy_from_slice(&v[start..start + n]);
                Ok(n)
            }
            Content::Unread => Err(std::io::Error::other(
                "a compressed file known, not opened for reading",
            )),
        }
    }

    /// Whether reading it backwards costs a pass from its start each time
    /// (a compressed file without podlog's index).
    pub(crate) fn is_streamed(&self) -> bool {
        matches!(self, Content::Compressed(c) if !c.is_indexed())
    }

    /// The current size: `fstat` for a plain file.
    pub(crate) fn size(&self) -> u64 {
        match self {
            Content::Plain(f) => f.metadata().map(|m| m.len()).unwrap_or(0),
            Content::Compressed(c) => c.size(),
            Content::Mem(v) => v.len() as u64,
            Content::Unread => 0,
        }
    }
}

/// What a reader knows of a compressed file it opened: compressed files
/// do not change (one is written aside and renamed into place), so its
/// identity stands for its content.
#[derive(Clone, Copy, Debug)]
pub struct Known {
    pub size: u64,
    pub fingerprint: Option<u64>,
}

/// [`open_log`], except that a compressed file `known` gives facts for (by
/// its identity and name: an inode number alone may be reused) is not
/// decompressed again: it comes back as
/// [`Content::Unread`] with the known size and fingerprint. A follower
/// that lists its directory again after every change uses it, so that
/// unrelated changes cost it no decompression.
///
/// # Errors
///
/// As [`open_log`].
pub fn open_log_known(
    root: &SafeRoot,
    dir: &[&str],
    file: &LogFile,
    known: &dyn Fn(FileKey, &str) -> Option<Known>,
) -> Result<OpenLog, OpenLogError> {
    if !file.compressed {
        return open_log(root, dir, file);
    }
    let mut rel: Vec<&str> = dir.to_vec();
    rel.push(&file.name);
    let opened = root.open_file(&rel)?;
    match known(opened.key, &file.name) {
        Some(k) => Ok(OpenLog {
            file: file.clone(),
            content: Content::Unread,
            key: opened.key,
            size: k.size,
            fingerprint: k.fingerprint,
        }),
        None => open_log(root, dir, file),
    }
}

/// Opens one log file of a container directory beneath the root.
///
/// # Errors
///
/// The safe-open error, a read error, or a decompression bomb.
pub fn open_log(root: &SafeRoot, dir: &[&str], file: &LogFile) -> Result<OpenLog, OpenLogError> {
    let mut rel: Vec<&str> = dir.to_vec();
    rel.push(&file.name);
    let opened = root.open_file(&rel)?;
    let read_err = |source| OpenLogError::Read {
        name: file.name.clone(),
        source,
    };
    let (content, size) = match file.codec() {
        Some(codec) => {
            let c = Compressed::open(opened.file, codec).map_err(|e| match e {
                compressed::OpenError::Io(source) => read_err(source),
                compressed::OpenError::Refused(reason) => OpenLogError::Refused {
                    name: file.name.clone(),
                    reason,
                },
            })?;
            let n = c.size();
            (Content::Compressed(Box::new(c)), n)
        }
        None if file.compressed => {
            return Err(read_err(io::Error::other("no codec podlog reads")));
        }
        None => (Content::Plain(opened.file), opened.size),
    };
    let fingerprint = match &content {
        // Remembered by the file's identity: not decompressed again.
        Content::Compressed(c) => c.fingerprint(|| head_fingerprint(&content)),
        _ => head_fingerprint(&content),
    }
    .map_err(read_err)?;
    Ok(OpenLog {
        file: file.clone(),
        fingerprint,
        content,
        key: opened.key,
        size,
    })
}

/// The fingerprint of `content`'s first bytes.
fn head_fingerprint(content: &Content) -> io::Result<Option<u64>> {
    let mut head = [0u8; FINGERPRINT_BYTES];
    let mut got = 0;
    while got < head.len() {
        let n = content.read_at(got as u64, &mut head[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(fingerprint_of(&head[..got]))
}

/// How long after its last write a rotated file that a process still holds
/// open for writing may still receive lines. A runtime writes out what it
/// buffered and closes the old file within milliseconds of
/// `ReopenContainerLog`; a writer that holds it longer without writing is
/// not the runtime.
const ROTATE_WAIT_NANOS: Nanos = 10_000_000_000;
/// Where the kernel cannot tell whether a rotated file has writers: how
/// long after its last write it may still receive lines.
const ROTATE_QUIET_NANOS: Nanos = 1_000_000_000;

/// Until when `f`, opened from `log`, may still receive lines, if it may:
/// it is a rotated, uncompressed file and a process (the runtime, before or
/// just after `ReopenContainerLog`) holds it open for writing, or, where
/// the kernel cannot tell, it was written very recently. Counted from its
/// last write, so a process that holds it without writing cannot hold up
/// reads or retention for long. The active file is written by definition:
/// `None`.
pub(crate) fn written_until(log: &LogFile, f: &std::fs::File) -> Option<Nanos> {
    use std::os::unix::fs::MetadataExt as _;
    if log.rotated.is_none() || log.compressed {
        return None;
    }
    let wait = match crate::fs::safe_open::has_writer(f) {
        Some(false) => return None,
        Some(true) => ROTATE_WAIT_NANOS,
        None => ROTATE_QUIET_NANOS,
    };
    let meta = f.metadata().ok()?;
    let mtime = meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec();
    let until = mtime.saturating_add(wait);
    (until > crate::cri::now_nanos()).then_some(until)
}

/// FNV-1a, 64 bits: stable across builds and platforms (cursors outlive the
/// process), unlike the standard library's hasher.
pub(crate) fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Separate the parts so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_names() {
        let c = |n: &str| classify(n).map(|f| (f.attempt, f.rotated, f.compressed));
        assert_eq!(c("0.log"), Some((0, None, false)));
        assert_eq!(c("12.log"), Some((12, None, false)));
        assert_eq!(
            c("0.log.20261121-050000"),
            Some((0, Some("20261121-050000".into()), false))
        );
        assert_eq!(
            c("0.log.20261121-050000.gz"),
            Some((0, Some("20261121-050000".into()), true))
        );
        assert_eq!(
            c("0.log.20261121-050000.zst"),
            Some((0, Some("20261121-050000".into()), true))
        );
        assert_eq!(
            c("3.log.20261121-050000.001.zst"),
            Some((3, Some("20261121-050000.001".into()), true))
        );
        assert_eq!(c("0.log.20261121-050000.tmp"), None);
        assert_eq!(c("0.log.20261121-050000.gz.tmp"), None);
        assert_eq!(c("0.log.20261121-050000.zst.tmp"), None);
        assert_eq!(c("0.log.20261121-050000.xz"), None);
        assert_eq!(c("0.log.20261121-050000.bz2"), None);
        assert_eq!(c("0.log.20261121-050000.lz4"), None);
        assert_eq!(c("0.log.xz"), None);
        assert_eq!(c("0.log.zst"), None);
        assert_eq!(c("0.log..zst"), None);
        assert_eq!(c("0.log..gz"), None);
        assert_eq!(c("x.log"), None);
        assert_eq!(c("0.logx"), None);
        assert_eq!(c(".log"), None);
        assert_eq!(c("0.log."), None);
        assert_eq!(c("99999999999.log"), None);
    }

    #[test]
    fn codecs_follow_the_last_extension() {
        let codec = |n: &str| classify(n).and_then(|f| f.codec());
        assert_eq!(codec("0.log"), None);
        assert_eq!(codec("0.log.20261121-050000"), None);
        assert_eq!(codec("0.log.20261121-050000.gz"), Some(Codec::Gzip));
        assert_eq!(codec("0.log.20261121-050000.zst"), Some(Codec::Zstd));
        for c in Codec::ALL {
            let name = format!("0.log.20261121-050000{}", c.ext());
            assert_eq!(
                Codec::strip(&name),
                Some(("0.log.20261121-050000", c)),
                "{name}"
            );
        }
        assert_eq!(Codec::strip("0.log.20261121-050000.xz"), None);
    }

    #[test]
    fn groups_in_read_order() {
        let names = [
            "0.log",
            "0.log.20261121-050000",
            "0.log.20261121-040000.gz",
            "0.log.20261121-050000.gz",
            "1.log",
            "0.log.20261121-060000.gz.tmp",
            "junk",
        ];
        let entries: Vec<(String, Kind)> =
            names.iter().map(|n| (n.to_string(), Kind::File)).collect();
        let g = group(&entries);
        let order: Vec<&str> = g[&0].iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            order,
            vec!["0.log.20261121-040000.gz", "0.log.20261121-050000", "0.log"]
        );
        assert_eq!(g[&1].len(), 1);
    }

    #[test]
    fn groups_zstd_files_with_the_others() {
        let names = [
            "0.log",
            "0.log.20261121-030000.zst",
            "0.log.20261121-040000.gz",
            "0.log.20261121-050000.zst",
            "0.log.20261121-050000",
            "0.log.20261121-060000.zst",
            "0.log.20261121-060000.gz",
            "0.log.20261121-070000.zst.tmp",
            "0.log.20261121-070000.xz",
        ];
        let entries: Vec<(String, Kind)> =
            names.iter().map(|n| (n.to_string(), Kind::File)).collect();
        let order: Vec<String> = group(&entries)[&0].iter().map(|f| f.name.clone()).collect();
        // A plain twin wins over its `.zst`; of two compressed twins, the
        // first by name; temporary files and unread codecs are left out.
        assert_eq!(
            order,
            vec![
                "0.log.20261121-030000.zst",
                "0.log.20261121-040000.gz",
                "0.log.20261121-050000",
                "0.log.20261121-060000.gz",
                "0.log",
            ]
        );
    }

    /// One zstd frame with a content checksum, as the executor writes it.
    fn zstd_bytes(plain: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        e.include_checksum(true).unwrap();
        e.write_all(plain).unwrap();
        e.finish().unwrap()
    }

    fn gzip_bytes(plain: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(plain).unwrap();
        e.finish().unwrap()
    }

    /// `(name, bytes)` files in `p/c` beneath a temporary root.
    fn tree(files: &[(&str, &[u8])]) -> (tempfile::TempDir, SafeRoot) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("p").join("c");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let root = SafeRoot::open(tmp.path()).unwrap();
        (tmp, root)
    }

    fn all_of(o: &OpenLog) -> Vec<u8> {
        let mut buf = vec![0u8; o.size as usize];
        let n = o.content.read_at(0, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn compressed_files_are_served_decompressed_with_the_plain_identity() {
        let plain = b"2026-11-21T05:00:00.000000001Z stdout F first\n\
                      2026-11-21T05:00:00.000000002Z stdout F second\n"
            .repeat(50);
        // Two zstd frames one after the other, as an appending compressor
        // would leave them.
        let mut frames = zstd_bytes(&plain[..1000]);
        frames.extend(zstd_bytes(&plain[1000..]));
        let files: [(&str, Vec<u8>); 4] = [
            ("0.log.1", plain.clone()),
            ("0.log.2.gz", gzip_bytes(&plain)),
            ("0.log.3.zst", zstd_bytes(&plain)),
            ("0.log.4.zst", frames),
        ];
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        let (_tmp, root) = tree(&refs);
        let want_fp = fingerprint_of(&plain);
        assert!(want_fp.is_some());
        for (name, _) in &files {
            let f = classify(name).unwrap();
            let o = open_log(&root, &["p", "c"], &f).unwrap();
            assert_eq!(o.size, plain.len() as u64, "{name}");
            assert_eq!(all_of(&o), plain, "{name}");
            assert_eq!(o.fingerprint, want_fp, "{name}");
        }
    }

    #[test]
    fn a_broken_zstd_file_is_an_error_not_text() {
        let plain = b"2026-11-21T05:00:00.000000001Z stdout F x\n".repeat(100);
        let z = zstd_bytes(&plain);
        let mut flipped = z.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        let files: [(&str, &[u8]); 4] = [
            ("0.log.1.zst", &z[..z.len() - 5]),
            ("0.log.2.zst", b""),
            ("0.log.3.zst", &plain),
            ("0.log.4.zst", &flipped),
        ];
        let (_tmp, root) = tree(&files);
        for (name, _) in files {
            let f = classify(name).unwrap();
            let e = open_log(&root, &["p", "c"], &f).unwrap_err();
            assert!(
                matches!(e, OpenLogError::Read { .. } | OpenLogError::Refused { .. }),
                "{name}: {e:?}"
            );
        }
    }

    #[test]
    fn fingerprints_first_line() {
        assert_eq!(fingerprint_of(b"abc"), None);
        assert_eq!(fingerprint_of(b"abc\nmore"), fingerprint_of(b"abc\nother"));
        assert_ne!(fingerprint_of(b"abc\n"), fingerprint_of(b"abd\n"));
        assert!(fingerprint_of(&[b'x'; 300]).is_some());
    }
}
