//! Compressed rotated files cost a window, not their size: podlog's own
//! (pieces and an index) are read by the pieces a read touches, other
//! tools' are streamed, and bombs are refused.

use crate::common;

use std::io::Write as _;

use common::*;
use podlog_agent::testing::compress_like_podlog;

const APP: &str = "/logs/default/web/app";

/// `n` lines stamped from `minute` on, about 120 bytes each.
fn lines(minute: u32, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 120);
    for i in 0..n {
        let ts = format!(
            "2026-11-21T05:{minute:02}:{:02}.{:09}Z",
            (i / 1_000_000) % 60,
            i % 1_000_000_000
        );
        out.extend(cri(
            &ts,
            "stdout",
            "F",
            &format!("m{minute} line {i} {}", "x".repeat(60)),
        ));
    }
    out
}

/// 4 GiB of zeros: one member or frame of 64 MiB, 64 times over.
fn bombs() -> (Vec<u8>, Vec<u8>) {
    let zeros = vec![0u8; 64 << 20];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&zeros).unwrap();
    let gz = gz.finish().unwrap().repeat(64);
    let zst = zstd::stream::encode_all(zeros.as_slice(), 19)
        .unwrap()
        .repeat(64);
    (gz, zst)
}

#[tokio::test]
async fn bombs_and_large_compressed_files_cost_a_window() {
    let t = Tree::new();
    let dir = t.container("default", "web", "uid-web", "app");
    let (gz_bomb, zst_bomb) = bombs();
    write_file(&dir.join("0.log.20261121-050000.gz"), &gz_bomb);
    write_file(&dir.join("0.log.20261121-051000.zst"), &zst_bomb);
    // About 96 MiB of lines in podlog's seekable zstd, and as much again
    // in another tool's gzip (streamed).
    let big = lines(20, 800_000);
    write_file(
        &dir.join("0.log.20261121-052000.zst"),
        &compress_like_podlog(".zst", &big),
    );
    let mut other = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    other.write_all(&lines(30, 800_000)).unwrap();
    write_file(
        &dir.join("0.log.20261121-053000.gz"),
        &other.finish().unwrap(),
    );
    write_file(&dir.join("0.log"), &lines(40, 10));
    let d = t.start();
    assert_eq!(get(d.addr, "/healthz").await.status, 200);
    let before = d.status("RssAnon");

    // The last line: every file is opened, the bombs refused.
    let last = get_text(d.addr, &format!("{APP}?tailLines=1")).await;
    assert!(last.starts_with("m40 line 9 "), "{last}");
    // A line deep inside podlog's compressed file, by time.
    let t0 = "2026-11-21T05:20:00.000654321Z";
    let deep = get_text(d.addr, &format!("{APP}?sinceTime={t0}&limitBytes=20")).await;
    assert_eq!(deep, "m20 line 654321 xxxx");
    // And inside the streamed one.
    let t1 = "2026-11-21T05:30:00.000700000Z";
    let deep = get_text(d.addr, &format!("{APP}?sinceTime={t1}&limitBytes=20")).await;
    assert_eq!(deep, "m30 line 700000 xxxx");
    // The bombs were refused (once each: what streaming taught is kept).
    let refused = metric(d.addr, "podlog_decompression_refused_total").await;
    assert_eq!(refused, Some(2.0));

    let after = d.status("RssAnon");
    assert!(
        after <= before + 16 * 1024,
        "RssAnon grew from {before} to {after} KiB"
    );
}
