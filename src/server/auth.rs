//! Who is calling, and what they may do.
//!
//! # Why
//! Clients authenticate the way their InfluxDB client library does, and most
//! cannot send a custom header: the `influx` CLI (`-username/-password`),
//! Telegraf's `influxdb` output, Grafana's InfluxQL data source and
//! influxdb-python all send HTTP Basic; curl users put `u`/`p` in the URL.
//! So the gateway accepts its credentials in every form InfluxDB 1.x does:
//! - `Authorization: Token <t>` or `Bearer <t>`;
//! - `Authorization: Basic base64(user:password)`;
//! - `u`/`p` query parameters.
//!
//! A credential is either `auth_token` (the one admin credential, as before;
//! as a password it is accepted with any user name, as InfluxDB 2's v1
//! compatibility API does with tokens) or a named client from `clients`
//! (its token, or its password checked against an argon2 hash; the user
//! name is the client's name). Gateway credentials are **consumed**: the
//! `Authorization` header and `u`/`p` never reach a node.
//!
//! # Scopes
//! `write` (the write doors), `read` (queries that read, listings,
//! `/metrics`), `admin` (mutations: CREATE/DROP/…, deletes, bucket and task
//! changes). A client's optional `databases` list limits both reads and
//! writes to those databases (v1 `db`, v2 `bucket`); a request whose target
//! the gateway cannot name is refused for such a client rather than
//! guessed.
//!
//! # Cost
//! argon2 is slow on purpose (tens of milliseconds), and Telegraf sends its
//! password with every batch. A verified password is remembered per client
//! as its SHA-256 (compared in constant time), so only a new or changed
//! password pays for argon2, on the blocking pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Config, Scopes};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The client's name (`auth_token` is `admin`): logged, never a secret.
    pub name: String,
    pub scopes: Scopes,
    /// `None`: every database.
    pub databases: Option<Vec<String>>,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Admin,
}

impl Principal {
    /// Checks a scope and, for a client limited to some databases, the
    /// databases the request touches: `None` for a request that touches no
    /// database (listings, `/metrics`), an empty list when the gateway
    /// cannot name them (refused for a limited client).
    pub fn allows(&self, scope: Access, databases: Option<&[&str]>) -> Result<(), String> {
        let ok = match scope {
            Access::Read => self.scopes.read,
            Access::Write => self.scopes.write,
            Access::Admin => self.scopes.admin,
        };
        if !ok {
            let what = match scope {
                Access::Read => "read",
                Access::Write => "write",
                Access::Admin => "run administrative statements",
            };
            return Err(format!(
                "client {:?} is not authorized to {what}",
                self.name
            ));
        }
        let Some(allowed) = &self.databases else {
            return Ok(());
        };
        match databases {
            None => Ok(()),
            Some([]) => Err(format!(
                "client {:?} is limited to databases {allowed:?} and this request names none the gateway can check",
                self.name
            )),
            Some(dbs) => match dbs.iter().find(|d| !allowed.iter().any(|a| a == *d)) {
                Some(d) => Err(format!(
                    "client {:?} is not authorized for database {d:?}",
                    self.name
                )),
                None => Ok(()),
            },
        }
    }
}

struct Client {
    principal: Arc<Principal>,
    token: Option<String>,
    password_hash: Option<String>,
}

/// The gateway's credential check, built once from the config.
pub struct Authenticator {
    admin_token: Option<String>,
    admin: Arc<Principal>,
    clients: Vec<Client>,
    /// SHA-256 of the last password verified against each client's hash.
    verified: Mutex<HashMap<String, [u8; 32]>>,
}

/// Credentials as presented.
#[derive(Debug, PartialEq, Eq)]
enum Presented {
    Token(String),
    Password { user: String, password: String },
}

impl Authenticator {
    pub fn new(config: &Config) -> Authenticator {
        Authenticator {
            admin_token: config.auth_token.clone(),
            admin: Arc::new(Principal {
                name: "admin".into(),
                scopes: Scopes::ALL,
                databases: None,
            }),
            clients: config
                .clients
                .iter()
                .map(|c| Client {
                    principal: Arc::new(Principal {
                        name: c.name.clone(),
                        scopes: c.scopes,
                        databases: c.databases.clone(),
                    }),
                    token: c.token.clone(),
                    password_hash: c.password_hash.clone(),
                })
                .collect(),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the gateway checks credentials at all. When it does not,
    /// the client's own credentials pass through to the nodes.
    pub fn enabled(&self) -> bool {
        self.admin_token.is_some() || !self.clients.is_empty()
    }

    /// The caller behind `headers` and the URL `query`, or `None` when the
    /// credentials are missing or wrong.
    pub async fn authenticate(&self, headers: &HeaderMap, query: &str) -> Option<Arc<Principal>> {
        match presented(headers, query)? {
            Presented::Token(t) => self.by_token(&t),
            Presented::Password { user, password } => self.by_password(&user, &password).await,
        }
    }

    fn by_token(&self, token: &str) -> Option<Arc<Principal>> {
        if self.admin_token.as_deref().is_some_and(|a| ct_eq(a, token)) {
            return Some(self.admin.clone());
        }
        // Compare with every client's token, so timing does not tell which.
        let mut found = None;
        for c in &self.clients {
            if c.token.as_deref().is_some_and(|t| ct_eq(t, token)) {
                found = Some(c.principal.clone());
            }
        }
        found
    }

    async fn by_password(&self, user: &str, password: &str) -> Option<Arc<Principal>> {
        if let Some(c) = self.clients.iter().find(|c| c.principal.name == user) {
            if c.token.as_deref().is_some_and(|t| ct_eq(t, password)) {
                return Some(c.principal.clone());
            }
            let hash = c.password_hash.clone()?;
            let digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
            let known = self
                .verified
                .lock()
                .ok()
                .and_then(|m| m.get(user).copied())
                .is_some_and(|d| bool::from(d.ct_eq(&digest)));
            if known {
                return Some(c.principal.clone());
            }
            let password = password.to_string();
            let ok = tokio::task::spawn_blocking(move || verify(&hash, &password))
                .await
                .unwrap_or(false);
            if !ok {
                return None;
            }
            if let Ok(mut m) = self.verified.lock() {
                m.insert(user.to_string(), digest);
            }
            return Some(c.principal.clone());
        }
        // The admin token as a password, with any user name.
        self.admin_token
            .as_deref()
            .filter(|a| ct_eq(a, password))
            .map(|_| self.admin.clone())
    }
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn verify(hash: &str, password: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// An argon2id PHC string for `password` (for `inmate hash-password`).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::PasswordHasher;
    use argon2::password_hash::SaltString;
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// The credentials in a request: the `Authorization` header first, else
/// `u`/`p` in the URL.
fn presented(headers: &HeaderMap, query: &str) -> Option<Presented> {
    if let Some(h) = headers.get(http::header::AUTHORIZATION) {
        let h = h.to_str().ok()?;
        let (scheme, value) = h.split_once(' ')?;
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer") {
            return Some(Presented::Token(value.to_string()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(value)
                .ok()?;
            let text = String::from_utf8(raw).ok()?;
            let (user, password) = text.split_once(':')?;
            return Some(Presented::Password {
                user: user.into(),
                password: password.into(),
            });
        }
        return None;
    }
    let (mut user, mut password) = (None, None);
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "u" if user.is_none() => user = Some(v.into_owned()),
            "p" if password.is_none() => password = Some(v.into_owned()),
            _ => {}
        }
    }
    Some(Presented::Password {
        user: user.unwrap_or_default(),
        password: password?,
    })
}

/// Checks `principal` (none: the gateway checks no credentials) for
/// `access` to what a request touches, as the read router attributes it
/// ([`crate::backend::cluster::Scope`]): `Global` touches no database for a
/// read, but for an administrative statement it may change any database,
/// so a client limited to some databases may not run it.
pub fn check(
    principal: Option<&Principal>,
    access: Access,
    target: &crate::backend::cluster::Scope,
) -> Result<(), String> {
    use crate::backend::cluster::Scope;
    let Some(p) = principal else {
        return Ok(());
    };
    let names: Option<Vec<&str>> = match target {
        Scope::Databases(d) => Some(d.iter().map(String::as_str).collect()),
        Scope::Global if access != Access::Admin => None,
        Scope::Global | Scope::All => Some(Vec::new()),
    };
    p.allows(access, names.as_deref())
}

/// `query` without the gateway's own credentials (`u`, `p`), other
/// parameters in order.
pub fn strip_credentials(query: &str) -> String {
    if !query
        .split('&')
        .any(|kv| kv.starts_with("u=") || kv.starts_with("p="))
    {
        return query.to_string();
    }
    query
        .split('&')
        .filter(|kv| !(kv.starts_with("u=") || kv.starts_with("p=") || *kv == "u" || *kv == "p"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        let env = |_: &str| None;
        Config::from_yaml(yaml, std::path::Path::new("t.yaml"), &env).expect("config")
    }

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    fn basic(user: &str, pass: &str) -> HeaderMap {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        headers(&format!("Basic {b}"))
    }

    #[tokio::test]
    async fn every_form_of_credentials() {
        let hash = hash_password("graf-pw").unwrap();
        let c = config(&format!(
            "addresses: [{{url: 'http://a:1'}}]\nauth_token: adm\nclients:\n\
             - {{name: telegraf, token: tel-tok, scopes: [write], databases: [telegraf]}}\n\
             - {{name: grafana, password_hash: '{hash}', scopes: [read]}}\n"
        ));
        let a = Authenticator::new(&c);
        let none = HeaderMap::new();
        let who = |p: Option<Arc<Principal>>| p.map(|p| p.name.clone());
        assert_eq!(
            who(a.authenticate(&headers("Token adm"), "").await).as_deref(),
            Some("admin")
        );
        assert_eq!(
            who(a.authenticate(&headers("Bearer tel-tok"), "").await).as_deref(),
            Some("telegraf")
        );
        assert_eq!(
            who(a.authenticate(&basic("telegraf", "tel-tok"), "").await).as_deref(),
            Some("telegraf")
        );
        assert_eq!(
            who(a.authenticate(&basic("grafana", "graf-pw"), "").await).as_deref(),
            Some("grafana")
        );
        // Cached the second time, still right.
        assert_eq!(
            who(a.authenticate(&basic("grafana", "graf-pw"), "").await).as_deref(),
            Some("grafana")
        );
        assert_eq!(
            who(a.authenticate(&none, "db=x&u=grafana&p=graf-pw").await).as_deref(),
            Some("grafana")
        );
        assert_eq!(
            who(a.authenticate(&basic("anyone", "adm"), "").await).as_deref(),
            Some("admin")
        );
        assert_eq!(
            who(a.authenticate(&none, "u=x&p=adm").await).as_deref(),
            Some("admin")
        );
        for bad in [
            basic("grafana", "wrong"),
            basic("telegraf", "adm"),
            headers("Token nope"),
            headers("Basic !!!"),
            headers("Digest x"),
        ] {
            assert!(a.authenticate(&bad, "").await.is_none(), "{bad:?}");
        }
        assert!(a.authenticate(&none, "").await.is_none());
        assert!(a.authenticate(&none, "u=grafana").await.is_none());
    }

    #[test]
    fn scopes_and_databases() {
        let p = Principal {
            name: "t".into(),
            scopes: Scopes {
                read: false,
                write: true,
                admin: false,
            },
            databases: Some(vec!["a".into()]),
        };
        assert!(p.allows(Access::Write, Some(&["a"])).is_ok());
        assert!(p.allows(Access::Write, Some(&["b"])).is_err());
        assert!(p.allows(Access::Write, Some(&[])).is_err());
        assert!(p.allows(Access::Write, None).is_ok());
        assert!(p.allows(Access::Read, Some(&["a"])).is_err());
        assert!(p.allows(Access::Admin, Some(&["a"])).is_err());
    }

    #[test]
    fn gateway_credentials_are_stripped() {
        assert_eq!(
            strip_credentials("db=x&u=a&p=b&precision=s"),
            "db=x&precision=s"
        );
        assert_eq!(strip_credentials("db=x&up=1"), "db=x&up=1");
    }
}
