//! The `clients` section: named credentials with scopes, so Telegraf can be
//! write-only and Grafana read-only. Checked here so that a typo in a scope
//! or a hash that cannot be verified stops the gateway at start, not at the
//! first request.

use std::collections::HashSet;

use super::Problem;
use super::key::Key;
use crate::config::raw::{RawClient, RawString};
use crate::config::{ClientConfig, Scopes};

pub fn clients(section: Key<Vec<RawClient>>) -> Result<Vec<ClientConfig>, Problem> {
    let Some(list) = section.raw else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(list.len());
    let mut names = HashSet::new();
    let mut tokens = HashSet::new();
    for (i, c) in list.into_iter().enumerate() {
        let key = |field: &str| format!("{}[{i}].{field}", section.path);
        let name = c
            .name
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| (key("name"), "is required".to_string()))?;
        if !names.insert(name.clone()) {
            return Err((key("name"), format!("duplicate client name {name:?}")));
        }
        let token = c
            .token
            .map(RawString::into_string)
            .filter(|t| !t.is_empty());
        if let Some(t) = &token
            && !tokens.insert(t.clone())
        {
            return Err((key("token"), "is used by another client".into()));
        }
        let password_hash = c.password_hash.filter(|h| !h.is_empty());
        if let Some(h) = &password_hash
            && argon2::PasswordHash::new(h).is_err()
        {
            return Err((
                key("password_hash"),
                "is not an argon2 PHC string (make one with `inmate hash-password`)".into(),
            ));
        }
        if token.is_none() && password_hash.is_none() {
            return Err((
                key("token"),
                "a client needs a token or a password_hash".into(),
            ));
        }
        let scopes = scopes(key("scopes"), c.scopes)?;
        let databases = match c.databases {
            None => None,
            Some(d) if d.is_empty() => {
                return Err((
                    key("databases"),
                    "is empty: omit it to allow every database".into(),
                ));
            }
            Some(d) => Some(d),
        };
        out.push(ClientConfig {
            name,
            token,
            password_hash,
            scopes,
            databases,
        });
    }
    Ok(out)
}

fn scopes(path: String, raw: Option<Vec<String>>) -> Result<Scopes, Problem> {
    let Some(list) = raw.filter(|l| !l.is_empty()) else {
        return Err((path, "is required: any of read, write, admin".into()));
    };
    let mut s = Scopes::default();
    for scope in list {
        match scope.as_str() {
            "read" => s.read = true,
            "write" => s.write = true,
            "admin" => s.admin = true,
            other => {
                return Err((
                    path,
                    format!("unknown scope {other:?} (use read, write or admin)"),
                ));
            }
        }
    }
    Ok(s)
}
