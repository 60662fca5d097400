//! The manifest of known nodes: `<dir>/nodes.json`.
//!
//! It lists every cursor name the log was ever opened with (removed nodes
//! stay listed) and a durable second copy of each node's flags. Without it a
//! missing cursor file cannot be told apart from a node that was just added:
//! the first deserves re-delivery and a repair flag, the second a backfill
//! flag. The flag copy survives a corrupt cursor file, so a saved
//! `needs_repair` is never erased by damage.
//!
//! Written like a cursor file (tmp + fsync + rename, then a directory fsync)
//! and checked with a CRC32C; a corrupt manifest is treated as missing.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fs::{Fs, read_file, write_atomic};

/// The flags of one node, kept in its cursor record and in the manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeFlags {
    pub needs_repair: bool,
    pub needs_backfill: bool,
}

/// Known nodes and their saved flags.
pub(crate) type Nodes = BTreeMap<String, NodeFlags>;

#[derive(Serialize, Deserialize)]
struct ManifestFile {
    version: u32,
    nodes: Nodes,
    crc32c: u32,
}

const MANIFEST_VERSION: u32 = 1;

pub(crate) fn manifest_path(dir: &Path) -> PathBuf {
    dir.join("nodes.json")
}

fn nodes_crc(nodes: &Nodes) -> io::Result<u32> {
    // A BTreeMap serialises in key order, so the bytes are deterministic.
    let body = serde_json::to_vec(nodes).map_err(io::Error::other)?;
    Ok(crc32c::crc32c(&body))
}

/// Reads the manifest: `Ok(None)` when there is none, `Err` text when it
/// exists but cannot be trusted.
pub(crate) fn load(fs: &dyn Fs, dir: &Path) -> io::Result<Result<Option<Nodes>, String>> {
    let bytes = match read_file(fs, &manifest_path(dir)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Ok(None)),
        Err(e) => return Err(e),
    };
    let f: ManifestFile = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => return Ok(Err(format!("unparsable: {e}"))),
    };
    if f.version != MANIFEST_VERSION {
        return Ok(Err(format!("unknown version {}", f.version)));
    }
    if nodes_crc(&f.nodes)? != f.crc32c {
        return Ok(Err("checksum mismatch".to_string()));
    }
    Ok(Ok(Some(f.nodes)))
}

/// Writes the manifest atomically; the caller fsyncs `dir`.
pub(crate) fn store(fs: &dyn Fs, dir: &Path, nodes: &Nodes) -> io::Result<()> {
    let f = ManifestFile {
        version: MANIFEST_VERSION,
        nodes: nodes.clone(),
        crc32c: nodes_crc(nodes)?,
    };
    let body = serde_json::to_vec(&f).map_err(io::Error::other)?;
    write_atomic(fs, &manifest_path(dir), &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::fs::RealFs;

    #[test]
    fn store_load_and_detect_corruption() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(load(&RealFs, d.path()).unwrap(), Ok(None));
        let mut nodes = Nodes::new();
        nodes.insert(
            "a".into(),
            NodeFlags {
                needs_repair: true,
                needs_backfill: false,
            },
        );
        nodes.insert("b".into(), NodeFlags::default());
        store(&RealFs, d.path(), &nodes).unwrap();
        assert_eq!(load(&RealFs, d.path()).unwrap(), Ok(Some(nodes)));
        let p = manifest_path(d.path());
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("true", "false");
        std::fs::write(&p, text).unwrap();
        assert!(load(&RealFs, d.path()).unwrap().is_err());
    }
}
