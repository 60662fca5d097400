//! `/query`: InfluxQL, classified, then read from one node or mutated through
//! the log.
//!
//! The query text comes from a form body's `q` if there is one, else from the
//! URL's (as Go's `FormValue`), found without re-encoding the parameters
//! ([`super::request::first_param`]).
//! [`crate::query::influxql::classify_and_name`] decides, in one scan that
//! also yields the names for a read's scope:
//! - a read (or a request without `q`, so the node itself answers `missing
//!   required parameter "q"`) goes to one node that has applied what it can
//!   see: its [`Scope`], from `db` and the names in `q` (`read.rs`);
//! - a mutation first has `now()` pinned to the gateway's [`crate::clock`],
//!   so every node, replaying now or tomorrow, acts on the same time range;
//!   the rewritten `q` replaces the original where the client put it, and the
//!   request goes through the log (`mutate.rs`).

use std::sync::Arc;

use bytes::Bytes;
use http::Response;

use super::auth::{self, Access};
use super::request::{ClientRequest, db_of, q_of, with_q};
use super::respond::{ApiError, Body};
use super::{Gateway, mutate, read};
use crate::backend::cluster::Scope;
use crate::query::influxql::{self, QueryClass};

/// `/query`: a read goes to one node, a mutation through the log.
pub async fn handle(gw: &Arc<Gateway>, mut req: ClientRequest) -> Result<Response<Body>, ApiError> {
    let body = req.read_body(gw).await?;
    // Like Go's FormValue: a form body's q wins over the URL's.
    let form_q = if req.is_form() { q_of(&body) } else { None };
    let in_form = form_q.is_some();
    let q = form_q.or_else(|| q_of(req.query.as_bytes()));
    let db = db_of(req.is_form().then_some(&body[..]), &req.query);
    // One scan of `q` gives both its class and, for a read, its scope.
    let (mutation, names) = match q.as_deref() {
        Some(q) => {
            let (c, names) = influxql::classify_and_name(q);
            (c.class == QueryClass::Mutation, Some(names))
        }
        None => (false, None),
    };
    let (Some(q), true) = (q.as_deref(), mutation) else {
        let scope = names.map_or(Scope::Global, |n| Scope::of_named_read(n, db.as_deref()));
        auth::check(req.principal.as_deref(), Access::Read, &scope).map_err(ApiError::Forbidden)?;
        return read::forward_read(gw, &req, "/query", &req.query, body, scope).await;
    };
    let scope = Scope::of_influxql_mutation(q, db.as_deref());
    auth::check(req.principal.as_deref(), Access::Admin, &scope).map_err(ApiError::Forbidden)?;
    let q = influxql::rewrite_now(q, gw.clock.now_nanos()).unwrap_or_else(|| q.to_string());
    let (query, body) = if in_form {
        let form = with_q(&String::from_utf8_lossy(&body), &q);
        (req.query.clone(), Bytes::from(form))
    } else {
        (with_q(&req.query, &q), body)
    };
    mutate::influxql(gw, req, query, body, scope).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_replacement_keeps_other_params() {
        assert_eq!(
            with_q("db=x&q=DROP+X&epoch=ms", "DROP Y"),
            "db=x&q=DROP+Y&epoch=ms"
        );
        assert_eq!(
            q_of(b"db=x&q=CREATE+DATABASE+a").as_deref(),
            Some("CREATE DATABASE a")
        );
        assert_eq!(q_of(b"db=x"), None);
        assert_eq!(q_of(b"q=&db=x").as_deref(), Some(""));
        assert_eq!(
            q_of(b"q=SHOW+USERS&q=DROP+USER+a").as_deref(),
            Some("SHOW USERS")
        );
    }
}
