//! The `addresses` section: one [`NodeConfig`] per InfluxDB node, with URLs
//! (http or https, with `tls` settings for https) and names checked for
//! shape and uniqueness (a node's name keys its cursor
//! and dead-letter file, so two nodes must never share one).

use std::collections::HashSet;

use super::Problem;
use super::key::Key;
use crate::config::raw::{RawAddress, RawGzip, RawString};
use crate::config::{NodeConfig, WireGzip};

pub fn nodes(addresses: Key<Vec<RawAddress>>) -> Result<Vec<NodeConfig>, Problem> {
    let list = match addresses.raw {
        Some(list) if !list.is_empty() => list,
        _ => return Err(addresses.problem("at least one address is required")),
    };
    let mut nodes = Vec::with_capacity(list.len());
    let mut seen_urls = HashSet::new();
    let mut seen_names = HashSet::new();
    for (i, a) in list.into_iter().enumerate() {
        let key = |field: &str| format!("{}[{i}].{field}", addresses.path);
        let url_key = Key::new(key("url"), a.url);
        let url_path = url_key.path.clone();
        let raw_url = url_key.required()?;
        let url = node_url(&url_path, &raw_url)?;
        if !seen_urls.insert(url.as_str().to_string()) {
            return Err((url_path, format!("duplicate address {raw_url:?}")));
        }
        let default_name = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(80)
        );
        let name = a.name.unwrap_or(default_name);
        if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control() || c == '/') {
            return Err((
                key("name"),
                format!("invalid node name {name:?} (1-128 characters, no '/')"),
            ));
        }
        if !seen_names.insert(name.clone()) {
            return Err((key("name"), format!("duplicate node name {name:?}")));
        }
        let nonempty =
            |s: Option<RawString>| s.map(RawString::into_string).filter(|s| !s.is_empty());
        let username = nonempty(a.username);
        let password = nonempty(a.password);
        if password.is_some() && username.is_none() {
            return Err((key("password"), "is set without username".into()));
        }
        nodes.push(NodeConfig {
            name,
            token: nonempty(a.token),
            username,
            password,
            gzip: gzip_setting(key("gzip"), a.gzip)?,
            tls: super::tls::node_tls(&key("tls"), a.tls, url.scheme() == "https")?,
            url,
        });
    }
    Ok(nodes)
}

/// Validates a node URL: http(s), a host, no query or fragment. A trailing
/// slash is dropped so path joins are uniform.
fn node_url(path: &str, raw: &str) -> Result<url::Url, Problem> {
    let bad = |why: &str| (path.to_string(), format!("invalid URL {raw:?}{why}"));
    let mut url = url::Url::parse(raw.trim()).map_err(|_| bad(""))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(": scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad(""));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(": must not have a query or fragment"));
    }
    let trimmed = url.path().trim_end_matches('/').to_string();
    url.set_path(&trimmed);
    Ok(url)
}

/// `addresses[].gzip`: absent or `auto`, `true`, `false`.
fn gzip_setting(path: String, raw: Option<RawGzip>) -> Result<WireGzip, Problem> {
    match raw {
        None => Ok(WireGzip::Auto),
        Some(RawGzip::Bool(true)) => Ok(WireGzip::Always),
        Some(RawGzip::Bool(false)) => Ok(WireGzip::Never),
        Some(RawGzip::Word(w)) if w == "auto" => Ok(WireGzip::Auto),
        Some(RawGzip::Word(w)) => Err((
            path,
            format!("invalid value {w:?}: use true, false or auto"),
        )),
    }
}
