//! OCI image layouts built locally from the host's static busybox.
//!
//! No registry is reachable from the test machines, so the sandbox (`pause`)
//! image and the test image are written here as OCI image-layout archives
//! with one uncompressed layer, ready for `ctr images import`. Importing them
//! is left to [`crate::Containerd`].

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest as _, Sha256};

/// Full reference of the test image: busybox with the applets in
/// [`BUSYBOX_APPLETS`] linked under `/bin`, default command `/bin/sh`.
pub const BUSYBOX_IMAGE: &str = "podlog.test/busybox:e2e";

/// Full reference of the sandbox image, used as the CRI `sandbox_image`.
pub const PAUSE_IMAGE: &str = "podlog.test/pause:e2e";

/// Applets linked to `/bin/busybox` in the test image.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "sleep", "echo", "printf", "cat", "head", "tail", "yes", "seq", "dd", "tr", "true",
    "false", "date", "env", "kill", "ls", "wc", "mkdir", "rm", "id", "hostname",
];

/// The pause entrypoint: sleeps until SIGTERM and then exits 0 at once.
///
/// As PID 1 of its namespace, the shell only receives the signals it has a
/// handler for, so the trap is what makes `StopPodSandbox` prompt. `wait`
/// returns as soon as the trap fires, unlike a foreground `sleep`.
const PAUSE_SCRIPT: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done";

/// Annotation `ctr images import` reads for a full image name; it takes
/// precedence over `org.opencontainers.image.ref.name`.
const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";

const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// A failure while writing an image archive.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading the busybox binary or writing the archive failed.
    #[error("{op} {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file it was done to.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The reference has no `:tag`, which the importer needs to name it.
    #[error("image reference {reference:?} has no tag")]
    NoTag {
        /// The reference as given.
        reference: String,
    },
    /// The host architecture has no OCI name known here.
    #[error("no OCI architecture name for host architecture {arch:?}")]
    UnknownArch {
        /// `std::env::consts::ARCH`.
        arch: &'static str,
    },
}

/// What to put in an image: its name, what it runs, and which applets to link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Full reference, `repository:tag`, e.g. [`BUSYBOX_IMAGE`].
    pub reference: String,
    /// Image `Entrypoint`; may be empty.
    pub entrypoint: Vec<String>,
    /// Image `Cmd`; may be empty.
    pub cmd: Vec<String>,
    /// Names linked as `/bin/NAME -> busybox`.
    pub applets: Vec<String>,
}

/// An archive written by [`write_oci_archive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// Full reference the archive carries, e.g. [`BUSYBOX_IMAGE`].
    pub reference: String,
    /// Repository part of the reference, for `ctr images import --base-name`.
    pub base_name: String,
    /// `sha256:…` digest of the image manifest.
    pub manifest_digest: String,
    /// Path of the OCI image-layout tar.
    pub archive: PathBuf,
}

// === impl ImageSpec ===

impl ImageSpec {
    /// The test image: `/bin/sh` by default, with [`BUSYBOX_APPLETS`].
    #[must_use]
    pub fn busybox() -> Self {
        Self {
            reference: BUSYBOX_IMAGE.to_owned(),
            entrypoint: Vec::new(),
            cmd: vec!["/bin/sh".to_owned()],
            applets: BUSYBOX_APPLETS.iter().map(|&a| a.to_owned()).collect(),
        }
    }

    /// The sandbox image: sleeps until SIGTERM, then exits 0.
    #[must_use]
    pub fn pause() -> Self {
        Self {
            reference: PAUSE_IMAGE.to_owned(),
            entrypoint: vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                PAUSE_SCRIPT.to_owned(),
            ],
            cmd: Vec::new(),
            applets: vec!["sh".to_owned(), "sleep".to_owned()],
        }
    }
}

/// Writes `spec` as an OCI image-layout tar at `out`, with `busybox` (a static
/// binary) as `/bin/busybox`.
///
/// The archive holds `oci-layout`, `index.json` and `blobs/sha256/…`: one
/// uncompressed layer (so its digest is also its diff id), the config for the
/// host's architecture, and the manifest. The index entry carries both the
/// tag as `org.opencontainers.image.ref.name` and the full reference as
/// `io.containerd.image.name`. Everything has fixed owners and times, so the
/// same inputs give the same digests.
///
/// # Errors
///
/// Fails when `busybox` cannot be read, `out` cannot be written, the
/// reference has no tag, or the host architecture is unknown.
pub fn write_oci_archive(
    spec: &ImageSpec,
    busybox: &Path,
    out: &Path,
) -> Result<BuiltImage, ImageError> {
    let (base_name, tag) = split_reference(&spec.reference)?;
    let arch = oci_arch()?;

    let busybox_bytes = fs::read(busybox).map_err(|source| ImageError::Io {
        op: "read busybox binary",
        path: busybox.to_owned(),
        source,
    })?;
    let layer = layer_tar(&busybox_bytes, &spec.applets).map_err(|source| ImageError::Io {
        op: "build layer for",
        path: out.to_owned(),
        source,
    })?;
    let layer_digest = sha256_digest(&layer);

    let mut config = json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/bin"],
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        "history": [{
            "created": "1970-01-01T00:00:00Z",
            "created_by": "podlog-e2e: busybox layer",
        }],
    });
    if !spec.entrypoint.is_empty() {
        config["config"]["Entrypoint"] = json!(spec.entrypoint);
    }
    if !spec.cmd.is_empty() {
        config["config"]["Cmd"] = json!(spec.cmd);
    }
    let config = to_json(&config);
    let config_digest = sha256_digest(&config);

    let manifest = to_json(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": { "mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config.len() },
        "layers": [{ "mediaType": MEDIA_LAYER, "digest": layer_digest, "size": layer.len() }],
    }));
    let manifest_digest = sha256_digest(&manifest);

    let index = to_json(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": { "architecture": arch, "os": "linux" },
            "annotations": {
                OCI_REF_NAME: tag,
                CONTAINERD_IMAGE_NAME: spec.reference,
            },
        }],
    }));

    let io_err = |source| ImageError::Io {
        op: "write image archive",
        path: out.to_owned(),
        source,
    };
    let file = File::create(out).map_err(io_err)?;
    let mut archive = tar::Builder::new(BufWriter::new(file));
    append_dir(&mut archive, "blobs/").map_err(io_err)?;
    append_dir(&mut archive, "blobs/sha256/").map_err(io_err)?;
    append_file(
        &mut archive,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        0o644,
    )
    .map_err(io_err)?;
    append_file(&mut archive, "index.json", &index, 0o644).map_err(io_err)?;
    for (digest, blob) in [
        (&layer_digest, &layer),
        (&config_digest, &config),
        (&manifest_digest, &manifest),
    ] {
        let path = format!("blobs/sha256/{}", hex_part(digest));
        append_file(&mut archive, &path, blob, 0o644).map_err(io_err)?;
    }
    let mut writer = archive.into_inner().map_err(io_err)?;
    writer.flush().map_err(io_err)?;

    Ok(BuiltImage {
        reference: spec.reference.clone(),
        base_name: base_name.to_owned(),
        manifest_digest,
        archive: out.to_owned(),
    })
}

/// Splits `repo:tag` at the last colon after the last slash, so that a
/// registry port (`host:5000/repo:tag`) is not taken for a tag.
fn split_reference(reference: &str) -> Result<(&str, &str), ImageError> {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) if !reference.contains('@') => {
            let at = name_start + i;
            Ok((&reference[..at], &reference[at + 1..]))
        }
        _ => Err(ImageError::NoTag {
            reference: reference.to_owned(),
        }),
    }
}

/// Whether the ELF file at `path` runs without a dynamic loader (has no
/// `PT_INTERP` program header). Only a static busybox works in an image
/// that has no libc. Files that are not 64-bit little-endian ELF count as
/// static: this check is a hint, not a gate.
///
/// # Errors
///
/// Fails when `path` cannot be read.
pub fn is_static_elf(path: &Path) -> io::Result<bool> {
    Ok(!elf_has_interpreter(&fs::read(path)?))
}

fn elf_has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("slice of 8 bytes")))
    };
    // ELFCLASS64, ELFDATA2LSB.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum)).any(|i| u32_at(phoff + i * usize::from(phentsize)) == Some(PT_INTERP))
}

/// The OCI (Go) name of the host architecture; the host's busybox is built
/// for it, and containerd only unpacks images that match it.
fn oci_arch() -> Result<&'static str, ImageError> {
    Ok(match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "loongarch64" => "loong64",
        arch => return Err(ImageError::UnknownArch { arch }),
    })
}

/// The root filesystem: `/bin/busybox`, the applet links, a minimal
/// `/etc/passwd` and `/etc/group` (so a numeric or named `root` user
/// resolves), and the usual empty directories.
fn layer_tar(busybox: &[u8], applets: &[String]) -> io::Result<Vec<u8>> {
    let mut layer = tar::Builder::new(Vec::new());
    for dir in ["bin/", "dev/", "etc/", "proc/", "root/", "sys/", "var/"] {
        append_dir(&mut layer, dir)?;
    }
    let mut tmp = dir_header();
    tmp.set_mode(0o1777);
    layer.append_data(&mut tmp, "tmp/", io::empty())?;

    append_file(&mut layer, "bin/busybox", busybox, 0o755)?;
    for applet in applets {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_mode(0o777);
        header.set_size(0);
        set_fixed_owner(&mut header);
        layer.append_link(&mut header, format!("bin/{applet}"), "busybox")?;
    }
    append_file(
        &mut layer,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        0o644,
    )?;
    append_file(
        &mut layer,
        "etc/group",
        b"root:x:0:\nnogroup:x:65534:\n",
        0o644,
    )?;
    layer.into_inner()
}

fn append_dir<W: Write>(archive: &mut tar::Builder<W>, path: &str) -> io::Result<()> {
    archive.append_data(&mut dir_header(), path, io::empty())
}

fn append_file<W: Write>(
    archive: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
    mode: u32,
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    header.set_size(data.len() as u64);
    set_fixed_owner(&mut header);
    archive.append_data(&mut header, path, data)
}

fn dir_header() -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    set_fixed_owner(&mut header);
    header
}

fn set_fixed_owner(header: &mut tar::Header) {
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
}

fn to_json(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a serde_json::Value always serializes")
}

fn sha256_digest(bytes: &[u8]) -> String {
    let mut digest = String::with_capacity(7 + 64);
    digest.push_str("sha256:");
    for byte in Sha256::digest(bytes) {
        write!(digest, "{byte:02x}").expect("writing to a String cannot fail");
    }
    digest
}

fn hex_part(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_reference_keeps_registry_port() {
        let cases = [
            (
                "podlog.test/busybox:e2e",
                Some(("podlog.test/busybox", "e2e")),
            ),
            ("host:5000/repo:tag", Some(("host:5000/repo", "tag"))),
            ("busybox:1", Some(("busybox", "1"))),
            ("host:5000/repo", None),
            ("repo", None),
            ("repo@sha256:abcd", None),
        ];
        for (reference, want) in cases {
            let got = split_reference(reference).ok();
            assert_eq!(got, want, "{reference}");
        }
    }

    #[test]
    fn host_programs_are_classified() {
        // /bin/sh is dynamically linked on every distribution we run on.
        assert!(!is_static_elf(Path::new("/bin/sh")).expect("read /bin/sh"));
        assert!(!elf_has_interpreter(b"#!/bin/sh\n"));
    }

    #[test]
    fn sha256_digest_of_empty_input() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn archive_is_reproducible_and_complete() {
        let dir = tempfile::tempdir().expect("create temp dir");
        let fake_busybox = dir.path().join("busybox");
        fs::write(&fake_busybox, b"\x7fELF not really").expect("write fake busybox");
        let first = dir.path().join("a.tar");
        let second = dir.path().join("b.tar");
        let spec = ImageSpec::busybox();
        let a = write_oci_archive(&spec, &fake_busybox, &first).expect("write archive");
        let b = write_oci_archive(&spec, &fake_busybox, &second).expect("write archive");
        assert_eq!(a.manifest_digest, b.manifest_digest);
        assert_eq!(a.base_name, "podlog.test/busybox");

        let mut names = Vec::new();
        let mut index = Vec::new();
        let mut archive = tar::Archive::new(File::open(&first).expect("open archive"));
        for entry in archive.entries().expect("read entries") {
            let mut entry = entry.expect("read entry");
            let path = entry.path().expect("entry path").display().to_string();
            if path == "index.json" {
                io::Read::read_to_end(&mut entry, &mut index).expect("read index");
            }
            names.push(path);
        }
        assert!(names.contains(&"oci-layout".to_owned()), "{names:?}");
        let blobs = names
            .iter()
            .filter(|n| n.starts_with("blobs/sha256/") && n.len() > 13)
            .count();
        assert_eq!(blobs, 3, "{names:?}");
        let index: serde_json::Value = serde_json::from_slice(&index).expect("parse index");
        let annotations = &index["manifests"][0]["annotations"];
        assert_eq!(annotations[OCI_REF_NAME], "e2e");
        assert_eq!(annotations[CONTAINERD_IMAGE_NAME], BUSYBOX_IMAGE);
        assert_eq!(index["manifests"][0]["digest"], a.manifest_digest.as_str());
    }
}
