//! Resumable cursors: opaque, URL-safe, checksummed.
//!
//! A cursor names an event by its completion position and says where reading
//! must restart to rebuild the events after it (the head of the oldest `P`
//! chain still open then). Files are named by the fingerprint of their first
//! line, not by name or inode, so a cursor still resolves after its file was
//! renamed by a rotation or compressed. A cursor also carries a key of the
//! container attempt it belongs to, so one from another container is refused.

use base64::Engine as _;

use crate::fs::fileset::fnv1a64;

/// A position in one file of a container attempt, by fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilePoint {
    pub fingerprint: u64,
    pub offset: u64,
}

/// The decoded content of a cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// [`attempt_key`] of the container attempt.
    pub key: u64,
    /// The end of the line that completed the event.
    pub end: FilePoint,
    /// The piece of that line (see [`crate::event::End`]).
    pub sub: u32,
    /// Where to restart reading.
    pub restart: FilePoint,
    /// With a delimiter policy: per stream (stdout, stderr), where its
    /// oldest open event begins (`None`: nothing open); that stream's lines
    /// before it were delivered. See [`crate::event::framing`].
    pub open: Option<[Option<FilePoint>; 2]>,
}

/// Why a cursor parameter was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("cursor is not a podlog cursor (bad encoding, length or checksum)")]
    Garbled,
    #[error("cursor belongs to another container or attempt")]
    OtherContainer,
}

const VERSION: u8 = 1;
const LEN: usize = 1 + 8 + 8 + 8 + 4 + 8 + 8 + 4;
/// Version 2 adds the per-stream open heads: a flag and a point each.
const VERSION_FRAMED: u8 = 2;
const LEN_FRAMED: usize = LEN + 2 * (1 + 8 + 8);

/// The key a cursor carries for one container attempt.
pub(crate) fn attempt_key(
    namespace: &str,
    pod: &str,
    uid: &str,
    container: &str,
    attempt: u32,
) -> u64 {
    fnv1a64(&[
        namespace.as_bytes(),
        pod.as_bytes(),
        uid.as_bytes(),
        container.as_bytes(),
        &attempt.to_le_bytes(),
    ])
}

// === impl Cursor ===

impl Cursor {
    /// Appends [`Cursor::encode`]'s text to `out` without allocating.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        let mut b = [0u8; LEN_FRAMED];
        b[0] = VERSION;
        b[1..9].copy_from_slice(&self.key.to_le_bytes());
        b[9..17].copy_from_slice(&self.end.fingerprint.to_le_bytes());
        b[17..25].copy_from_slice(&self.end.offset.to_le_bytes());
        b[25..29].copy_from_slice(&self.sub.to_le_bytes());
        b[29..37].copy_from_slice(&self.restart.fingerprint.to_le_bytes());
        b[37..45].copy_from_slice(&self.restart.offset.to_le_bytes());
        let mut len = LEN;
        if let Some(open) = &self.open {
            b[0] = VERSION_FRAMED;
            len = LEN_FRAMED;
            for (i, p) in open.iter().enumerate() {
                let at = 45 + i * 17;
                if let Some(p) = p {
                    b[at] = 1;
                    b[at + 1..at + 9].copy_from_slice(&p.fingerprint.to_le_bytes());
                    b[at + 9..at + 17].copy_from_slice(&p.offset.to_le_bytes());
                }
            }
        }
        let sum = fnv1a64(&[&b[..len - 4]]) as u32;
        b[len - 4..len].copy_from_slice(&sum.to_le_bytes());
        let mut text = [0u8; 112];
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode_slice(&b[..len], &mut text)
            .expect("112 bytes hold the base64 of 83");
        out.extend_from_slice(&text[..n]);
    }

    /// Encodes as unpadded URL-safe base64 (66 characters; 111 with
    /// per-stream heads).
    pub fn encode(&self) -> String {
        let mut v = Vec::with_capacity(112);
        self.encode_into(&mut v);
        String::from_utf8(v).expect("base64 is ASCII")
    }

    /// The attempt key a well-formed cursor carries, without checking it
    /// against any attempt: used to find the attempt a cursor belongs to.
    pub(crate) fn peek_key(s: &str) -> Option<u64> {
        let c = Self::decode_any(s).ok()?;
        Some(c.key)
    }

    fn decode_any(s: &str) -> Result<Self, CursorError> {
        if s.len() > 128 {
            return Err(CursorError::Garbled);
        }
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| CursorError::Garbled)?;
        let len = b.len();
        if !(len == LEN && b[0] == VERSION || len == LEN_FRAMED && b[0] == VERSION_FRAMED) {
            return Err(CursorError::Garbled);
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("slice of 8"));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("slice of 4"));
        let sum = fnv1a64(&[&b[..len - 4]]) as u32;
        if sum != u32_at(len - 4) {
            return Err(CursorError::Garbled);
        }
        let open = (len == LEN_FRAMED).then(|| {
            [0, 1].map(|i| {
                let at = 45 + i * 17;
                (b[at] == 1).then(|| FilePoint {
                    fingerprint: u64_at(at + 1),
                    offset: u64_at(at + 9),
                })
            })
        });
        Ok(Cursor {
            open,
            key: u64_at(1),
            end: FilePoint {
                fingerprint: u64_at(9),
                offset: u64_at(17),
            },
            sub: u32_at(25),
            restart: FilePoint {
                fingerprint: u64_at(29),
                offset: u64_at(37),
            },
        })
    }

    /// Decodes a cursor and checks that it belongs to the attempt `key`.
    ///
    /// # Errors
    ///
    /// [`CursorError::Garbled`] for anything that is not a cursor this
    /// version wrote, [`CursorError::OtherContainer`] for a valid cursor of
    /// another attempt.
    pub(crate) fn decode(s: &str, key: u64) -> Result<Self, CursorError> {
        let c = Self::decode_any(s)?;
        if c.key != key {
            return Err(CursorError::OtherContainer);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(key: u64, fe: u64, oe: u64, sub: u32, fr: u64, or: u64) {
            let c = Cursor { key, end: FilePoint { fingerprint: fe, offset: oe }, sub,
                restart: FilePoint { fingerprint: fr, offset: or }, open: None };
            let s = c.encode();
            prop_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            prop_assert_eq!(Cursor::decode(&s, key), Ok(c));
            let mut v = Vec::new();
            c.encode_into(&mut v);
            prop_assert_eq!(v, s.as_bytes());
            prop_assert_eq!(Cursor::decode(&s, key ^ 1), Err(CursorError::OtherContainer));
        }

        #[test]
        fn framed_round_trip(key: u64, sub: u32, heads: [Option<(u64, u64)>; 2]) {
            let p = |(fingerprint, offset)| FilePoint { fingerprint, offset };
            let c = Cursor { key, end: p((1, 2)), sub, restart: p((3, 4)),
                open: Some(heads.map(|h| h.map(p))) };
            let s = c.encode();
            prop_assert_eq!(s.len(), 111);
            prop_assert_eq!(Cursor::decode(&s, key), Ok(c));
            let mut v = Vec::new();
            c.encode_into(&mut v);
            prop_assert_eq!(v, s.as_bytes());
        }

        #[test]
        fn garbage_is_refused(s in ".{0,100}") {
            prop_assert!(Cursor::decode(&s, 0).is_err());
        }
    }

    #[test]
    fn flipped_character_is_garbled() {
        let c = Cursor {
            key: 7,
            end: FilePoint {
                fingerprint: 1,
                offset: 2,
            },
            sub: 0,
            restart: FilePoint {
                fingerprint: 1,
                offset: 0,
            },
            open: None,
        };
        let mut s = c.encode().into_bytes();
        s[20] = if s[20] == b'A' { b'B' } else { b'A' };
        let s = String::from_utf8(s).unwrap();
        assert_eq!(Cursor::decode(&s, 7), Err(CursorError::Garbled));
    }
}
