use super::*;

fn lines(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        writeln!(
            out,
            "2026-11-21T05:00:00.{i:09}Z stdout F line {i} {}",
            "x".repeat(i % 97)
        )
        .unwrap();
    }
    out
}

fn podlog(codec: Codec, plain: &[u8]) -> Vec<u8> {
    let mut w = PieceWriter::new(codec, Vec::new()).unwrap();
    // Written in uneven slices, as a copy loop would.
    for part in plain.chunks(70_001) {
        w.write_all(part).unwrap();
    }
    w.finish().unwrap()
}

fn foreign(codec: Codec, plain: &[u8]) -> Vec<u8> {
    match codec {
        Codec::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(plain).unwrap();
            e.finish().unwrap()
        }
        Codec::Zstd => zstd::stream::encode_all(plain, 1).unwrap(),
    }
}

/// What another tool makes of it: every member or frame in turn.
fn decompress_all(codec: Codec, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match codec {
        Codec::Gzip => {
            flate2::read::MultiGzDecoder::new(bytes)
                .read_to_end(&mut out)
                .unwrap();
        }
        Codec::Zstd => out = zstd::stream::decode_all(bytes).unwrap(),
    }
    out
}

fn open(bytes: &[u8], codec: Codec) -> (tempfile::NamedTempFile, Result<Compressed, OpenError>) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    let c = Compressed::open(f.reopen().unwrap(), codec);
    (f, c)
}

/// Reads `len` bytes at `at` through `read_at`.
fn read(c: &Compressed, at: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = c.read_at(at + got as u64, &mut out[got..]).unwrap();
        if n == 0 {
            break;
        }
        got += n;
    }
    out.truncate(got);
    out
}

/// `c` reads as `plain` at offsets all over it, forwards and backwards.
fn reads_like(c: &Compressed, plain: &[u8], codec: Codec) {
    for at in offsets(plain.len() as u64) {
        let want = &plain[(at as usize).min(plain.len())..(at as usize + 3000).min(plain.len())];
        assert_eq!(read(c, at, 3000), want, "{codec:?} at {at}");
    }
}

/// Offsets all over the file, forwards and backwards.
fn offsets(size: u64) -> Vec<u64> {
    let mut v = vec![0, 1, size / 2, size.saturating_sub(1), size, size + 10];
    let mut x = 12345u64;
    for _ in 0..40 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        v.push(x % size.max(1));
    }
    v
}

#[test]
fn podlog_files_decompress_as_usual_and_read_by_pieces() {
    let plain = lines(40_000); // about 3.8 MiB: several pieces
    assert!(plain.len() > 3 * PIECE);
    for codec in Codec::ALL {
        let bytes = podlog(codec, &plain);
        assert_eq!(decompress_all(codec, &bytes), plain, "{codec:?}");
        let (_f, c) = open(&bytes, codec);
        let c = c.unwrap();
        assert!(c.is_indexed(), "{codec:?}");
        assert_eq!(c.size(), plain.len() as u64);
        reads_like(&c, &plain, codec);
    }
}

#[test]
fn the_gzip_index_is_what_the_gzip_tool_reads_past() {
    let Ok(out) = std::process::Command::new("gzip").arg("--version").output() else {
        return; // no gzip here: decompress_all stands in for it above
    };
    assert!(out.status.success());
    let plain = lines(20_000);
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&podlog(Codec::Gzip, &plain)).unwrap();
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(f.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, plain);
}

#[test]
fn empty_and_small_podlog_files() {
    for codec in Codec::ALL {
        for plain in [b"".to_vec(), b"one line\n".to_vec()] {
            let bytes = podlog(codec, &plain);
            assert_eq!(decompress_all(codec, &bytes), plain);
            let (_f, c) = open(&bytes, codec);
            let c = c.unwrap();
            assert!(c.is_indexed());
            assert_eq!(read(&c, 0, 100), plain);
        }
    }
}

#[test]
fn foreign_files_are_streamed_forwards_and_back() {
    let plain = lines(40_000);
    for codec in Codec::ALL {
        let (_f, c) = open(&foreign(codec, &plain), codec);
        let c = c.unwrap();
        assert!(!c.is_indexed(), "{codec:?}");
        assert_eq!(c.size(), plain.len() as u64);
        // The end is in the window kept from opening.
        let end = plain.len() as u64 - 500;
        assert_eq!(read(&c, end, 500), &plain[end as usize..]);
        reads_like(&c, &plain, codec);
    }
}

#[test]
fn a_damaged_index_is_not_trusted() {
    let plain = lines(30_000);
    for codec in Codec::ALL {
        let good = podlog(codec, &plain);
        // A piece size one off: the sizes no longer add up to the file.
        let mut bad = good.clone();
        let at = match codec {
            Codec::Zstd => good.len() - 9 - 8 * 3 - 8,
            Codec::Gzip => good.len() - 10 - 4 - 8 * 3,
        };
        bad[at] ^= 1;
        assert_eq!(
            decompress_all(codec, &bad),
            plain,
            "{codec:?}: still a valid stream"
        );
        let (_f, c) = open(&bad, codec);
        let c = c.unwrap();
        assert!(!c.is_indexed(), "{codec:?}");
        assert_eq!(read(&c, 1000, 100), &plain[1000..1100]);
    }
}

#[test]
fn bombs_are_refused_without_inflating_them() {
    let zeros = vec![0u8; 64 << 20];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&zeros).unwrap();
    let bombs = [
        (Codec::Gzip, gz.finish().unwrap()),
        (
            Codec::Zstd,
            zstd::stream::encode_all(zeros.as_slice(), 19).unwrap(),
        ),
    ];
    for (codec, bomb) in bombs {
        let (_f, c) = open(&bomb, codec);
        assert!(
            matches!(c, Err(OpenError::Refused(Refused::Ratio))),
            "{codec:?}: {c:?}"
        );
    }
}

#[test]
fn broken_and_empty_files_are_errors() {
    let plain = lines(2000);
    for codec in Codec::ALL {
        let z = foreign(codec, &plain);
        let (_f, c) = open(&z[..z.len() - 5], codec);
        assert!(
            matches!(c, Err(OpenError::Io(_))),
            "{codec:?} cut short: {c:?}"
        );
        let (_f, c) = open(b"", codec);
        assert!(
            matches!(c, Err(OpenError::Refused(Refused::Empty))),
            "{c:?}"
        );
        let (_f, c) = open(&plain, codec);
        assert!(c.is_err(), "{codec:?}: plain text is no compressed file");
    }
}

#[test]
fn a_damaged_piece_is_a_read_error() {
    let plain = lines(30_000);
    for codec in Codec::ALL {
        let mut bytes = podlog(codec, &plain);
        bytes[100] ^= 0xff;
        let (_f, c) = open(&bytes, codec);
        let c = c.unwrap();
        let mut buf = [0u8; 10];
        assert!(c.read_at(0, &mut buf).is_err(), "{codec:?}");
        // Other pieces still read.
        let far = plain.len() as u64 - 10;
        assert_eq!(read(&c, far, 10), &plain[far as usize..]);
    }
}
