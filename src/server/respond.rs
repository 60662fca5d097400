//! Response building: InfluxDB's own error shapes, per API flavour.
//!
//! v1 endpoints answer `{"error":"…"}` plus an `X-Influxdb-Error` header (as
//! 1.x does on non-2xx other than 401); v2 endpoints answer
//! `{"code":"…","message":"…"}` plus `X-Platform-Error-Code` (as 2.x does).
//! Clients key their retry logic on these, so the shapes are not cosmetic.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Which API a request came in on, so errors use that API's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    V1,
    V2,
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

/// Cuts `s` to at most `max` bytes without splitting a character; returns
/// whether anything was cut.
pub fn truncate_at_char_boundary(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    true
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
}
