//! The `tls` keys: `addresses[].tls` for https nodes and the top-level
//! `tls` for the listener. The files are loaded here once, so a missing,
//! unreadable or mismatched certificate stops the gateway at startup with
//! the key that names it.

use std::path::PathBuf;

use super::Problem;
use super::key::Key;
use crate::config::raw::{RawListenerTls, RawNodeTls};
use crate::config::tls::{ListenerTls, NodeTls};

/// `addresses[i].tls` (at `path`) for a node whose URL is https or not.
pub fn node_tls(path: &str, raw: Option<RawNodeTls>, https: bool) -> Result<NodeTls, Problem> {
    let Some(raw) = raw else {
        return Ok(NodeTls::default());
    };
    if !https {
        return Err((path.into(), "is set but the node URL is http".into()));
    }
    let tls = NodeTls {
        ca_file: raw.ca_file.map(PathBuf::from),
        cert_file: raw.cert_file.map(PathBuf::from),
        key_file: raw.key_file.map(PathBuf::from),
        insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
    };
    if tls.cert_file.is_some() != tls.key_file.is_some() {
        return Err((
            path.into(),
            "cert_file and key_file must be set together".into(),
        ));
    }
    if tls.insecure_skip_verify && tls.ca_file.is_some() {
        return Err((
            path.into(),
            "ca_file has no effect with insecure_skip_verify: true".into(),
        ));
    }
    tls.client_config()
        .map_err(|e| (path.into(), e.to_string()))?;
    Ok(tls)
}

/// The top-level `tls`: both files, or no key at all.
pub fn listener_tls(key: Key<RawListenerTls>) -> Result<Option<ListenerTls>, Problem> {
    let Some(raw) = key.raw else {
        return Ok(None);
    };
    let (Some(cert_file), Some(key_file)) = (raw.cert_file, raw.key_file) else {
        return Err((key.path, "cert_file and key_file are both required".into()));
    };
    let tls = ListenerTls {
        cert_file: cert_file.into(),
        key_file: key_file.into(),
    };
    tls.load().map_err(|e| (key.path.clone(), e.to_string()))?;
    Ok(Some(tls))
}
