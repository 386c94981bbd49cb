//! Compressed log files, read in place through a bounded window: never
//! inflated whole, whatever their size or expansion.
//!
//! podlog writes its compressed files in pieces ([`PieceWriter`]): every
//! [`PIECE`] plain bytes are one gzip member or one zstd frame, and an
//! index of the pieces' sizes ends the file — for gzip in the extra field
//! of a last, empty member, for zstd in a skippable frame laid out as
//! zstd's seekable format. Other tools ignore both and decompress the file
//! as usual. A read of such a file decompresses only the pieces it touches
//! (two kept at a time), so `tailLines`, `sinceTime` and cursors cost
//! O(1) and O(log n) pieces.
//!
//! Any other compressed file (another tool's, the kubelet's) is streamed:
//! decompressed once when opened, to learn its size, keeping the last
//! [`WINDOW`] bytes; a read behind the window decompresses again from the
//! start. A stream that expands more than [`MAX_RATIO`] times or past
//! [`MAX_STREAM_BYTES`] is refused (a decompression bomb).

use std::io::{self, BufReader, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use super::fileset::Codec;
use crate::telemetry;

/// Plain bytes in one piece of a file podlog compresses.
pub(crate) const PIECE: usize = 1 << 20;

/// A piece larger than this is not podlog's: its index is not trusted.
const MAX_PIECE: u64 = 4 << 20;

/// Plain bytes a streamed file keeps before its read position.
pub(crate) const WINDOW: usize = 1 << 20;

/// A streamed file expanding more than this many times (once past
/// [`RATIO_FROM`]) is refused.
pub(crate) const MAX_RATIO: u64 = 256;

/// Below this many plain bytes no ratio is judged.
const RATIO_FROM: u64 = 16 << 20;

/// A streamed file decompressing to more than this is refused.
pub(crate) const MAX_STREAM_BYTES: u64 = 4 << 30;

/// The most pieces a gzip index holds (its extra field is at most 64 KiB);
/// a larger file gets no index and is streamed.
const MAX_GZIP_PIECES: usize = 8000;

/// zstd's skippable frame magic number (the seekable format's variant).
const ZSTD_SKIPPABLE: u32 = 0x184D_2A5E;

/// The zstd seekable format's footer magic number.
const ZSTD_SEEKABLE: u32 = 0x8F92_EAB1;

/// The subfield id of podlog's index in a gzip extra field.
const GZIP_SUBFIELD: [u8; 2] = *b"PL";

/// The end of every gzip index member: an empty deflate block, then the
/// CRC-32 and the size of nothing.
const GZIP_EMPTY_END: [u8; 10] = [0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];

/// zstd's level: its default, which compresses about as well as gzip's
/// default at several times its speed.
const ZSTD_LEVEL: i32 = 3;

/// Why a compressed file is not read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("decompresses to more than {MAX_STREAM_BYTES} bytes")]
    TooLarge,
    #[error("expands more than {MAX_RATIO} times (a decompression bomb?)")]
    Ratio,
    #[error("an empty file is no compressed stream")]
    Empty,
}

// === writing ===

/// Compresses what is written to it in pieces, and ends the output with
/// their index (see the module docs).
pub(crate) struct PieceWriter<W: Write> {
    codec: Codec,
    out: W,
    buf: Vec<u8>,
    /// (compressed, plain) size of each piece written.
    pieces: Vec<(u32, u32)>,
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl<W: Write> PieceWriter<W> {
    /// gzip at its default level; zstd at [`ZSTD_LEVEL`] with a checksum
    /// in every frame, so that a damaged file fails to decompress instead
    /// of yielding other bytes (gzip always has its CRC).
    ///
    /// # Errors
    ///
    /// zstd's context cannot be set up.
    pub(crate) fn new(codec: Codec, out: W) -> io::Result<Self> {
        let zstd = match codec {
            Codec::Gzip => None,
            Codec::Zstd => {
                let mut c = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
                c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
                Some(c)
            }
        };
        Ok(Self {
            codec,
            out,
            buf: Vec::with_capacity(PIECE),
            pieces: Vec::new(),
            zstd,
        })
    }

    /// Compresses what is buffered as one piece.
    fn piece(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let packed = match &mut self.zstd {
            Some(c) => c.compress(&self.buf)?,
            None => {
                let mut e = flate2::write::GzEncoder::new(
                    Vec::with_capacity(self.buf.len() / 4),
                    flate2::Compression::default(),
                );
                e.write_all(&self.buf)?;
                e.finish()?
            }
        };
        self.out.write_all(&packed)?;
        self.pieces
            .push((packed.len() as u32, self.buf.len() as u32));
        self.buf.clear();
        Ok(())
    }

    /// Writes the last piece and the index; returns the inner writer.
    ///
    /// # Errors
    ///
    /// Compressing or writing failed.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.piece()?;
        let index = match self.codec {
            Codec::Zstd => zstd_index(&self.pieces),
            // Without room for the index, the file is a plain multi-member
            // gzip file, streamed when read.
            Codec::Gzip if self.pieces.len() > MAX_GZIP_PIECES => Vec::new(),
            Codec::Gzip => gzip_index(&self.pieces),
        };
        self.out.write_all(&index)?;
        Ok(self.out)
    }
}

impl<W: Write> Write for PieceWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(PIECE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIECE {
            self.piece()?;
        }
        Ok(n)
    }

    /// Ends the current piece early, so what was written so far reaches
    /// the inner writer.
    fn flush(&mut self) -> io::Result<()> {
        self.piece()?;
        self.out.flush()
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// zstd's seekable format: a skippable frame of (compressed, plain) sizes
/// and a footer (count, descriptor without checksums, magic).
fn zstd_index(pieces: &[(u32, u32)]) -> Vec<u8> {
    let table = pieces.len() * 8 + 9;
    let mut out = Vec::with_capacity(table + 8);
    put_u32(&mut out, ZSTD_SKIPPABLE);
    put_u32(&mut out, table as u32);
    for &(c, p) in pieces {
        put_u32(&mut out, c);
        put_u32(&mut out, p);
    }
    put_u32(&mut out, pieces.len() as u32);
    out.push(0);
    put_u32(&mut out, ZSTD_SEEKABLE);
    out
}

/// A last gzip member holding nothing, with the sizes and their count in
/// a `PL` subfield of its extra field.
fn gzip_index(pieces: &[(u32, u32)]) -> Vec<u8> {
    let data = pieces.len() * 8 + 4;
    let xlen = data + 4;
    let mut out = Vec::with_capacity(12 + xlen + GZIP_EMPTY_END.len());
    // Magic, deflate, FEXTRA, no time, no extra flags, unknown OS.
    out.extend_from_slice(&[0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 255]);
    out.extend_from_slice(&(xlen as u16).to_le_bytes());
    out.extend_from_slice(&GZIP_SUBFIELD);
    out.extend_from_slice(&(data as u16).to_le_bytes());
    for &(c, p) in pieces {
        put_u32(&mut out, c);
        put_u32(&mut out, p);
    }
    put_u32(&mut out, pieces.len() as u32);
    out.extend_from_slice(&GZIP_EMPTY_END);
    out
}

// === the index ===

/// One piece: where its compressed bytes are, and which plain bytes it
/// holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    raw: u64,
    raw_len: u32,
    plain: u64,
    plain_len: u32,
}

/// The pieces of a file, from its index, checked against the file's size.
fn pieces_of(sizes: &[(u32, u32)], index_len: u64, file_len: u64) -> Option<Vec<Piece>> {
    let mut raw = 0u64;
    let mut plain = 0u64;
    let mut out = Vec::with_capacity(sizes.len());
    for &(c, p) in sizes {
        if c == 0 || u64::from(p) > MAX_PIECE {
            return None;
        }
        out.push(Piece {
            raw,
            raw_len: c,
            plain,
            plain_len: p,
        });
        raw += u64::from(c);
        plain += u64::from(p);
    }
    (raw + index_len == file_len).then_some(out)
}

/// The sizes in the index at the end of `tail` (the file's last bytes),
/// and the index's length; `None` when there is no index of podlog's.
fn read_index(codec: Codec, tail: &[u8]) -> Option<(Vec<(u32, u32)>, u64)> {
    let n = tail.len();
    let sizes = |from: usize, count: usize| {
        (0..count)
            .map(|i| (get_u32(tail, from + i * 8), get_u32(tail, from + i * 8 + 4)))
            .collect()
    };
    match codec {
        Codec::Zstd => {
            if n < 17 || get_u32(tail, n - 4) != ZSTD_SEEKABLE || tail[n - 5] != 0 {
                return None;
            }
            let count = get_u32(tail, n - 9) as usize;
            let table = count.checked_mul(8)?.checked_add(9)?;
            let start = n.checked_sub(table + 8)?;
            if get_u32(tail, start) != ZSTD_SKIPPABLE || get_u32(tail, start + 4) as usize != table
            {
                return None;
            }
            Some((sizes(start + 8, count), (table + 8) as u64))
        }
        Codec::Gzip => {
            if n < 12 + 8 + GZIP_EMPTY_END.len() || tail[n - 10..] != GZIP_EMPTY_END {
                return None;
            }
            let count = get_u32(tail, n - 14) as usize;
            if count > MAX_GZIP_PIECES {
                return None;
            }
            let data = count * 8 + 4;
            let start = n.checked_sub(10 + data + 4 + 12)?;
            let h = &tail[start..];
            let ok = h[..4] == [0x1f, 0x8b, 8, 4]
                && usize::from(u16::from_le_bytes([h[10], h[11]])) == data + 4
                && h[12..14] == GZIP_SUBFIELD
                && usize::from(u16::from_le_bytes([h[14], h[15]])) == data;
            ok.then(|| (sizes(start + 16, count), (n - start) as u64))
        }
    }
}

/// How many bytes at the end of a file hold its index at most.
fn index_room(codec: Codec) -> usize {
    match codec {
        Codec::Gzip => 12 + 4 + MAX_GZIP_PIECES * 8 + 4 + GZIP_EMPTY_END.len(),
        // Up to 64 Ki pieces (64 GiB) in one read; a larger index is read
        // whole once its count is known.
        Codec::Zstd => 17 + (64 << 10) * 8,
    }
}

// === reading ===

/// A compressed log file, opened for reading (see the module docs).
pub struct Compressed {
    file: std::fs::File,
    codec: Codec,
    size: u64,
    /// The compressed size (files are never changed once in place).
    len: u64,
    id: Identity,
    how: Mutex<How>,
}

impl std::fmt::Debug for Compressed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressed")
            .field("codec", &self.codec)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// How a compressed file is read: by its pieces, or as a stream.
enum How {
    Pieces {
        pieces: Vec<Piece>,
        /// The pieces decompressed last, most recent first.
        cache: Vec<(usize, Vec<u8>)>,
    },
    Stream(Box<Stream>),
}

/// A streamed file's decoder and the plain bytes `[start, pos)` it kept.
struct Stream {
    dec: Decoder,
    pos: u64,
    window: Vec<u8>,
    start: u64,
}

/// A decoder of the whole file from its start; counts the compressed
/// bytes it read.
enum Decoder {
    Gzip(flate2::read::MultiGzDecoder<BufReader<Counted>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<Counted>>),
}

/// The file, read from its start, counting.
struct Counted {
    file: std::fs::File,
    read: u64,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl Decoder {
    fn new(codec: Codec, file: &std::fs::File) -> io::Result<Self> {
        let mut file = file.try_clone()?;
        file.rewind()?;
        let raw = BufReader::with_capacity(64 << 10, Counted { file, read: 0 });
        Ok(match codec {
            Codec::Gzip => Decoder::Gzip(flate2::read::MultiGzDecoder::new(raw)),
            Codec::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(raw)?),
        })
    }

    fn raw_read(&self) -> u64 {
        match self {
            Decoder::Gzip(d) => d.get_ref().get_ref().read,
            Decoder::Zstd(d) => d.get_ref().get_ref().read,
        }
    }
}

impl Read for Decoder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}

/// Why [`Compressed::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Refused(#[from] Refused),
}

impl Compressed {
    /// Opens `file`, compressed with `codec`: by its index when it has
    /// podlog's, else decompressing it once as a stream (see the module
    /// docs).
    ///
    /// # Errors
    ///
    /// A read error, a file that does not decompress, or one refused.
    pub(crate) fn open(file: std::fs::File, codec: Codec) -> Result<Self, OpenError> {
        let meta = file.metadata()?;
        let len = meta.len();
        let id = Identity::of(&meta);
        if len == 0 {
            return Err(Refused::Empty.into());
        }
        if let Some(pieces) = Self::indexed(&file, codec, len)? {
            let size = pieces
                .last()
                .map_or(0, |p| p.plain + u64::from(p.plain_len));
            return Ok(Self {
                file,
                codec,
                size,
                len,
                id,
                how: Mutex::new(How::Pieces {
                    pieces,
                    cache: Vec::new(),
                }),
            });
        }
        let mut s = Stream {
            dec: Decoder::new(codec, &file)?,
            pos: 0,
            window: Vec::new(),
            start: 0,
        };
        let size = match recalled(id).streamed {
            Some(Ok(size)) => size,
            Some(Err(refused)) => return Err(refused.into()),
            None => {
                // To the end once: the size, and a stream that is whole.
                let r = s.advance(u64::MAX, len).map(|()| s.pos);
                match &r {
                    Ok(size) => learnt(id, |f| f.streamed = Some(Ok(*size))),
                    Err(OpenError::Refused(refused)) => {
                        telemetry::decompression_refused();
                        learnt(id, |f| f.streamed = Some(Err(*refused)));
                    }
                    Err(OpenError::Io(_)) => {}
                }
                r?
            }
        };
        Ok(Self {
            file,
            codec,
            size,
            len,
            id,
            how: Mutex::new(How::Stream(Box::new(s))),
        })
    }

    /// The pieces of `file` when it ends in a valid index of podlog's.
    fn indexed(file: &std::fs::File, codec: Codec, len: u64) -> io::Result<Option<Vec<Piece>>> {
        let room = (index_room(codec) as u64).min(len);
        let mut tail = vec![0u8; room as usize];
        file.read_exact_at(&mut tail, len - room)?;
        if codec == Codec::Zstd
            && tail.len() >= 9
            && get_u32(&tail, tail.len() - 4) == ZSTD_SEEKABLE
        {
            // A larger table than the first read held: read it whole.
            let count = u64::from(get_u32(&tail, tail.len() - 9));
            let need = count * 8 + 17;
            if need > room && need <= len && count <= (1 << 24) {
                tail = vec![0u8; need as usize];
                file.read_exact_at(&mut tail, len - need)?;
            }
        }
        Ok(read_index(codec, &tail)
            .and_then(|(sizes, index_len)| pieces_of(&sizes, index_len, len)))
    }

    /// The plain size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file's fingerprint: `compute`d from its first bytes once per
    /// identity, then remembered.
    ///
    /// # Errors
    ///
    /// `compute`'s, not remembered.
    pub(crate) fn fingerprint(
        &self,
        compute: impl FnOnce() -> io::Result<Option<u64>>,
    ) -> io::Result<Option<u64>> {
        if let Some(fp) = recalled(self.id).fingerprint {
            return Ok(fp);
        }
        let fp = compute()?;
        learnt(self.id, |f| f.fingerprint = Some(fp));
        Ok(fp)
    }

    /// Whether the file is read by its index (podlog's), not streamed.
    pub fn is_indexed(&self) -> bool {
        matches!(*self.lock(), How::Pieces { .. })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, How> {
        self.how.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads plain bytes at `offset` into `buf`; 0 at the end.
    ///
    /// # Errors
    ///
    /// A read error, or a piece or stream that does not decompress.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let mut how = self.lock();
        match &mut *how {
            How::Pieces { pieces, cache } => {
                let i = pieces.partition_point(|p| p.plain + u64::from(p.plain_len) <= offset);
                let Some(&p) = pieces.get(i) else {
                    return Ok(0);
                };
                let plain = self.piece(cache, i, p)?;
                let from = (offset - p.plain) as usize;
                let n = buf.len().min(plain.len() - from);
                buf[..n].copy_from_slice(&plain[from..from + n]);
                Ok(n)
            }
            How::Stream(s) => {
                if offset < s.start {
                    // Behind the window: from the start again.
                    s.dec = Decoder::new(self.codec, &self.file)?;
                    s.pos = 0;
                    s.start = 0;
                    s.window.clear();
                }
                s.advance(offset + 1, self.len)?;
                let from = (offset - s.start) as usize;
                let n = buf.len().min(s.window.len().saturating_sub(from));
                buf[..n].copy_from_slice(&s.window[from..from + n]);
                Ok(n)
            }
        }
    }

    /// Piece `i`, decompressed (from the cache of the last two).
    fn piece<'c>(
        &self,
        cache: &'c mut Vec<(usize, Vec<u8>)>,
        i: usize,
        p: Piece,
    ) -> io::Result<&'c [u8]> {
        if let Some(at) = cache.iter().position(|(j, _)| *j == i) {
            let hit = cache.remove(at);
            cache.insert(0, hit);
            return Ok(&cache[0].1);
        }
        let mut raw = vec![0u8; p.raw_len as usize];
        self.file.read_exact_at(&mut raw, p.raw)?;
        let want = p.plain_len as usize;
        let plain = match self.codec {
            Codec::Zstd => zstd::bulk::decompress(&raw, want)?,
            Codec::Gzip => {
                let mut out = Vec::with_capacity(want);
                flate2::read::GzDecoder::new(raw.as_slice())
                    .take(want as u64 + 1)
                    .read_to_end(&mut out)?;
                out
            }
        };
        if plain.len() != want {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "piece {i} holds {} bytes, its index says {want}",
                    plain.len()
                ),
            ));
        }
        telemetry::decompressed(want as u64);
        cache.truncate(1);
        cache.insert(0, (i, plain));
        Ok(&cache[0].1)
    }
}

impl Stream {
    /// Decompresses on until `pos` reaches `until` or the end, keeping at
    /// least [`WINDOW`] bytes before `pos`; refuses a bomb (`len`: the
    /// compressed size).
    fn advance(&mut self, until: u64, len: u64) -> Result<(), OpenError> {
        const BLOCK: usize = 64 << 10;
        while self.pos < until {
            if self.window.len() >= 2 * WINDOW {
                let drop = self.window.len() - WINDOW;
                self.window.drain(..drop);
                self.start += drop as u64;
            }
            let have = self.window.len();
            self.window.resize(have + BLOCK, 0);
            let n = match self.dec.read(&mut self.window[have..]) {
                Ok(n) => n,
                Err(e) => {
                    self.window.truncate(have);
                    return Err(e.into());
                }
            };
            self.window.truncate(have + n);
            if n == 0 {
                break;
            }
            self.pos += n as u64;
            telemetry::decompressed(n as u64);
            if self.pos > MAX_STREAM_BYTES {
                return Err(Refused::TooLarge.into());
            }
            let raw = self.dec.raw_read().clamp(1, len);
            if self.pos > RATIO_FROM && self.pos / raw > MAX_RATIO {
                return Err(Refused::Ratio.into());
            }
        }
        Ok(())
    }
}

/// A compressed file's identity: a file with the same one has the same
/// content (compressed files are written aside and renamed into place,
/// never changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Identity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

impl Identity {
    fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        Self {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        }
    }
}

/// What reading a file once taught, by its identity: its plain size from
/// streaming it (or why it is refused), and its fingerprint. Later opens
/// of the same file (other reads, followers listing again) skip the pass
/// and the first piece; a read still decompresses what it reads.
#[derive(Clone, Copy, Debug, Default)]
struct Facts {
    streamed: Option<Result<u64, Refused>>,
    fingerprint: Option<Option<u64>>,
}

/// At most this many files are remembered; then the memory starts over.
const REMEMBERED: usize = 4096;

fn memory() -> std::sync::MutexGuard<'static, std::collections::HashMap<Identity, Facts>> {
    static MEMORY: std::sync::OnceLock<Mutex<std::collections::HashMap<Identity, Facts>>> =
        std::sync::OnceLock::new();
    MEMORY
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

fn recalled(id: Identity) -> Facts {
    memory().get(&id).copied().unwrap_or_default()
}

fn learnt(id: Identity, learn: impl FnOnce(&mut Facts)) {
    let mut m = memory();
    if m.len() >= REMEMBERED && !m.contains_key(&id) {
        m.clear();
    }
    learn(m.entry(id).or_default());
}

impl From<OpenError> for io::Error {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Io(e) => e,
            OpenError::Refused(r) => io::Error::new(io::ErrorKind::InvalidData, r),
        }
    }
}

#[cfg(test)]
mod tests;
