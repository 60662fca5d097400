//! Response building: InfluxDB's own error shapes, per API flavour.
//!
//! v1 endpoints answer `{"error":"…"}` plus an `X-Influxdb-Error` header (as
//! 1.x does on non-2xx other than 401); v2 endpoints answer
//! `{"code":"…","message":"…"}` plus `X-Platform-Error-Code` (as 2.x does).
//! Clients key their retry logic on these, so the shapes are not cosmetic.
//!
//! Handlers return `Result<Response<Body>, ApiError>`: every way a request
//! can fail is one [`ApiError`] variant with its status and InfluxDB's text,
//! and the router renders it in the flavour of the path the client called.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

use super::request::BodyReadError;
pub use super::request::Flavor;
use crate::lineproto::BodyError;
use crate::log::LogError;
use crate::redact::truncate_at_char_boundary;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Why a request failed, with the text InfluxDB (or the gateway) answers.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body could not be read (413, 408, 503 with `Retry-After`, or 400).
    #[error(transparent)]
    Body(#[from] BodyReadError),
    /// The body could not be decoded (413 past the limit once gunzipped,
    /// 400 otherwise).
    #[error(transparent)]
    Decode(#[from] BodyError),
    /// A parameter or the request is invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// v2 write without a bucket: 2.x answers 404.
    #[error("bucket not found")]
    BucketNotFound,
    /// The gateway token is missing or wrong (401; the text is per flavour).
    #[error("authorization failed")]
    Unauthorized,
    /// The log refused the append (503): nothing was promised.
    #[error("gateway cannot store the {what} durably: {source}")]
    NotStored {
        what: &'static str,
        source: LogError,
    },
    /// Every node failed a read (503).
    #[error("no InfluxDB node could answer: {0}")]
    NoNode(String),
    /// Too few nodes applied a write in time (500, as InfluxDB Enterprise);
    /// the write stays durable and queued.
    #[error(
        "write consistency not met: {confirmed} of {needed} required nodes confirmed within {timeout:?}; \
         the data is stored durably and stays queued for the other nodes"
    )]
    ConsistencyNotMet {
        confirmed: usize,
        needed: usize,
        timeout: Duration,
    },
    /// No node applied a mutation in time (500); it stays queued.
    #[error(
        "mutation stored durably but no node applied it within {timeout:?}; \
         it stays queued for {queued} and will be applied in order"
    )]
    MutationQueued { timeout: Duration, queued: String },
    /// Authenticated, but not allowed this (403).
    #[error("{0}")]
    Forbidden(String),
    /// A route the gateway does not serve (501, the original's own shape).
    #[error("Feature not supported")]
    NotSupported,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Body(BodyReadError::TooLarge) | ApiError::Decode(BodyError::TooLarge) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Body(BodyReadError::Timeout) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Body(BodyReadError::Busy) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Body(BodyReadError::Io(_))
            | ApiError::Decode(_)
            | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::BucketNotFound => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotStored { .. } | ApiError::NoNode(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::ConsistencyNotMet { .. } | ApiError::MutationQueued { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::NotSupported => StatusCode::NOT_IMPLEMENTED,
        }
    }

    /// The error as InfluxDB would answer it on a `flavor` endpoint.
    pub fn render(&self, flavor: Flavor) -> Response<Body> {
        match (self, flavor) {
            (ApiError::NotSupported, _) => not_supported(),
            (ApiError::Unauthorized, Flavor::V2) => {
                error(flavor, self.status(), "unauthorized access")
            }
            (ApiError::Body(BodyReadError::Busy), _) => {
                let mut r = error(flavor, self.status(), &self.to_string());
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
            }
            _ => error(flavor, self.status(), &self.to_string()),
        }
    }
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    r
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The v2 error code InfluxDB 2.x uses for a status.
fn v2_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not found",
        408 => "request timeout",
        413 => "request too large",
        422 => "unprocessable entity",
        429 => "too many requests",
        501 => "not implemented",
        503 => "unavailable",
        _ => "internal error",
    }
}

pub fn error(flavor: Flavor, status: StatusCode, msg: &str) -> Response<Body> {
    match flavor {
        Flavor::V1 => {
            let mut r = json(status, &serde_json::json!({ "error": msg }));
            if status != StatusCode::UNAUTHORIZED {
                // 1.x truncates this header to 1024 bytes.
                let mut h: String = msg.chars().filter(|c| !c.is_control()).collect();
                truncate_at_char_boundary(&mut h, 1024);
                if let Ok(v) = HeaderValue::from_str(&h) {
                    r.headers_mut().insert("x-influxdb-error", v);
                }
            }
            r
        }
        Flavor::V2 => {
            let code = v2_code(status);
            let mut r = json(status, &serde_json::json!({ "code": code, "message": msg }));
            r.headers_mut()
                .insert("x-platform-error-code", HeaderValue::from_static(code));
            r
        }
    }
}

/// Unknown routes: what the original answers.
pub fn not_supported() -> Response<Body> {
    json(
        StatusCode::NOT_IMPLEMENTED,
        &serde_json::json!({ "error": "Feature not supported" }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_text(r: Response<Body>) -> String {
        let b = r.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn v1_and_v2_shapes() {
        let r = error(Flavor::V1, StatusCode::BAD_REQUEST, "database is required");
        assert_eq!(r.headers()["x-influxdb-error"], "database is required");
        assert_eq!(body_text(r).await, r#"{"error":"database is required"}"#);
        let r = error(Flavor::V2, StatusCode::BAD_REQUEST, "bad");
        assert_eq!(r.headers()["x-platform-error-code"], "invalid");
        assert_eq!(body_text(r).await, r#"{"code":"invalid","message":"bad"}"#);
        let r = error(Flavor::V1, StatusCode::UNAUTHORIZED, "x");
        assert!(r.headers().get("x-influxdb-error").is_none());
    }

    #[tokio::test]
    async fn api_errors_keep_influxdb_statuses_and_texts() {
        let cases = [
            (
                ApiError::Body(BodyReadError::TooLarge),
                Flavor::V1,
                413,
                r#"{"error":"Request Entity Too Large"}"#,
            ),
            (
                ApiError::Decode(BodyError::TooLarge),
                Flavor::V2,
                413,
                r#"{"code":"request too large","message":"Request Entity Too Large"}"#,
            ),
            (
                ApiError::Body(BodyReadError::Timeout),
                Flavor::V1,
                408,
                r#"{"error":"timed out reading the request body"}"#,
            ),
            (
                ApiError::Decode(BodyError::Corrupt("bad gzip".into())),
                Flavor::V1,
                400,
                r#"{"error":"bad gzip"}"#,
            ),
            (
                ApiError::BucketNotFound,
                Flavor::V2,
                404,
                r#"{"code":"not found","message":"bucket not found"}"#,
            ),
            (
                ApiError::Unauthorized,
                Flavor::V1,
                401,
                r#"{"error":"authorization failed"}"#,
            ),
            (
                ApiError::Unauthorized,
                Flavor::V2,
                401,
                r#"{"code":"unauthorized","message":"unauthorized access"}"#,
            ),
            (
                ApiError::NoNode("a: down".into()),
                Flavor::V1,
                503,
                r#"{"error":"no InfluxDB node could answer: a: down"}"#,
            ),
            (
                ApiError::NotSupported,
                Flavor::V2,
                501,
                r#"{"error":"Feature not supported"}"#,
            ),
        ];
        for (e, flavor, status, body) in cases {
            let r = e.render(flavor);
            assert_eq!(r.status().as_u16(), status, "{e:?}");
            assert_eq!(body_text(r).await, body, "{e:?}");
        }
    }
}
