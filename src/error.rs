//! [`ConfigError`] (building) and [`WebhookError`] (per request).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use http::StatusCode;

use crate::verify::{PrepareError, VerifyError};

/// A layer or verifier could not be built from the given settings. Carries
/// the name of what was wrong, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A secret decoded to zero bytes.
    #[error("secret is empty")]
    EmptySecret,
    /// A secret is not in the provider's format.
    #[error("secret is not valid: {0}")]
    InvalidSecret(&'static str),
    /// A verifier was built without any secret.
    #[error("no secret was configured")]
    NoSecret,
    /// A public key is not in the expected format.
    #[error("public key is not valid: {0}")]
    InvalidKey(&'static str),
    /// A header name is not a valid HTTP header name.
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    /// A network range is not valid CIDR notation.
    #[error("invalid network {0:?}")]
    InvalidNetwork(String),
    /// A URL is not valid.
    #[error("invalid URL {0:?}")]
    InvalidUrl(String),
    /// A numeric setting is out of range.
    #[error("{0} is out of range")]
    OutOfRange(&'static str),
}

/// Why the layer refused a delivery. Each variant has one status and one
/// short code; the code is all the client sees (`{"error":"<code>"}`), the
/// rest goes to `tracing`. The error also rides in the rejection response's
/// extensions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// Verification failed.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The method is not the one webhooks use (POST).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The `Content-Type` is not one the provider sends.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The body is larger than the limit.
    #[error("body larger than the limit")]
    PayloadTooLarge,
    /// The body did not arrive within the read timeout.
    #[error("body not received within the read timeout")]
    BodyTimeout,
    /// The body could not be read (connection error, bad framing).
    #[error("body could not be read")]
    BodyRead,
    /// The client is over its rate.
    #[error("rate limited, retry after {retry_after:?}")]
    RateLimited {
        /// When a request may succeed again.
        retry_after: Duration,
    },
    /// The same event is being handled right now.
    #[error("event is being handled, retry after {retry_after:?}")]
    InFlight {
        /// When the claim expires at the latest.
        retry_after: Duration,
    },
    /// The idempotency store did not answer.
    #[error("idempotency store unavailable")]
    StoreUnavailable {
        /// When to try again.
        retry_after: Duration,
    },
    /// Fast-ack mode: the worker pool's queue is full, or the pool is
    /// shutting down. The claim was released; the provider retries later.
    #[error("worker queue full, retry after {retry_after:?}")]
    Overloaded {
        /// When to try again.
        retry_after: Duration,
    },
    /// The secrets to verify with could not be loaded (a tenant
    /// resolver's store failed or timed out).
    #[error("secrets unavailable")]
    SecretsUnavailable {
        /// When to try again.
        retry_after: Duration,
    },
}

impl From<PrepareError> for WebhookError {
    fn from(e: PrepareError) -> Self {
        match e {
            PrepareError::Verify(e) => Self::Verify(e),
            PrepareError::Unavailable { retry_after } => Self::SecretsUnavailable { retry_after },
        }
    }
}

impl WebhookError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Verify(e) => match e {
                VerifyError::MissingSignature(_)
                | VerifyError::SignatureMismatch
                | VerifyError::StaleTimestamp
                | VerifyError::FutureTimestamp
                | VerifyError::NoActiveSecret
                | VerifyError::UnknownTenant => StatusCode::UNAUTHORIZED,
                VerifyError::MissingHeader(_)
                | VerifyError::MalformedHeader(_)
                | VerifyError::MalformedBody(_)
                | VerifyError::InvalidTenant => StatusCode::BAD_REQUEST,
                VerifyError::SourceNotAllowed => StatusCode::FORBIDDEN,
            },
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BodyRead => StatusCode::BAD_REQUEST,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::InFlight { .. } => StatusCode::CONFLICT,
            Self::StoreUnavailable { .. }
            | Self::Overloaded { .. }
            | Self::SecretsUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The short code the client sees (`"invalid_signature"`).
    pub fn code(&self) -> &'static str {
        let body = self.body();
        body.strip_prefix(r#"{"error":""#)
            .and_then(|rest| rest.strip_suffix(r#""}"#))
            .unwrap_or(body)
    }

    /// The response body, `{"error":"<code>"}`: static text, so that a
    /// refusal (a flood's 429 above all) allocates no body.
    fn body(&self) -> &'static str {
        macro_rules! json {
            ($code:literal) => {
                concat!(r#"{"error":""#, $code, r#""}"#)
            };
        }
        match self {
            Self::Verify(e) => match e {
                VerifyError::MissingSignature(_) => json!("missing_signature"),
                // An unknown tenant looks like a wrong secret to the
                // client: the answer does not tell which tenants exist.
                VerifyError::SignatureMismatch
                | VerifyError::NoActiveSecret
                | VerifyError::UnknownTenant => json!("invalid_signature"),
                VerifyError::StaleTimestamp => json!("stale_timestamp"),
                VerifyError::FutureTimestamp => json!("future_timestamp"),
                VerifyError::MissingHeader(_) => json!("missing_header"),
                VerifyError::MalformedHeader(_) => json!("malformed_header"),
                VerifyError::MalformedBody(_) => json!("malformed_body"),
                VerifyError::SourceNotAllowed => json!("forbidden"),
                VerifyError::InvalidTenant => json!("invalid_tenant"),
            },
            Self::MethodNotAllowed => json!("method_not_allowed"),
            Self::UnsupportedMediaType => json!("unsupported_media_type"),
            Self::PayloadTooLarge => json!("payload_too_large"),
            Self::BodyTimeout => json!("body_timeout"),
            Self::BodyRead => json!("body_read_error"),
            Self::RateLimited { .. } => json!("rate_limited"),
            Self::InFlight { .. } => json!("in_flight"),
            Self::StoreUnavailable { .. } => json!("store_unavailable"),
            Self::Overloaded { .. } => json!("overloaded"),
            Self::SecretsUnavailable { .. } => json!("secrets_unavailable"),
        }
    }

    /// The `Retry-After` to send, in whole seconds rounded up.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after }
            | Self::InFlight { retry_after }
            | Self::StoreUnavailable { retry_after }
            | Self::Overloaded { retry_after }
            | Self::SecretsUnavailable { retry_after } => {
                let secs = retry_after
                    .as_secs()
                    .saturating_add(u64::from(retry_after.subsec_nanos() > 0));
                Some(secs.max(1))
            }
            Self::Verify(_)
            | Self::MethodNotAllowed
            | Self::UnsupportedMediaType
            | Self::PayloadTooLarge
            | Self::BodyTimeout
            | Self::BodyRead => None,
        }
    }

    /// The rejection as a response: status, `{"error":"<code>"}`,
    /// `Retry-After` where it applies, and `self` in the extensions.
    pub fn to_response<B: From<bytes::Bytes>>(&self) -> http::Response<B> {
        let body = bytes::Bytes::from_static(self.body().as_bytes());
        let mut res = http::Response::new(B::from(body));
        *res.status_mut() = self.status();
        res.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after() {
            res.headers_mut()
                .insert(http::header::RETRY_AFTER, retry_after_value(secs));
        }
        res.extensions_mut().insert(self.clone());
        res
    }
}

/// How the layer answers a refusal: [`RejectionResponse::json`] (the default),
/// [`RejectionResponse::problem_json`] (RFC 9457), or a function of your own
/// ([`RejectionResponse::custom`]). Set it with
/// [`WebhookLayerBuilder::with_rejection`](crate::middleware::WebhookLayerBuilder::with_rejection).
///
/// The detail of a refusal (which header, which check) stays in the logs:
/// a response says only its class, so that it is no oracle for an
/// attacker. A custom function gets the [`WebhookError`] and should keep
/// to that; its response should keep the status and `Retry-After`.
///
/// ```
/// use tower_webhook::{WebhookError, error::RejectionResponse};
///
/// let problem = RejectionResponse::problem_json().respond(&WebhookError::PayloadTooLarge);
/// assert_eq!(problem.status(), 413);
/// assert_eq!(problem.headers()["content-type"], "application/problem+json");
/// let body: serde_json::Value = serde_json::from_slice(problem.body())?;
/// assert_eq!(body["type"], "urn:tower-webhook:payload_too_large");
///
/// let plain = RejectionResponse::custom(|e: &WebhookError| {
///     let mut res = http::Response::new(bytes::Bytes::from(e.code()));
///     *res.status_mut() = e.status();
///     res
/// });
/// assert_eq!(plain.respond(&WebhookError::PayloadTooLarge).body(), "payload_too_large");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct RejectionResponse(Arc<RespondFn>);

type RespondFn = dyn Fn(&WebhookError) -> http::Response<Bytes> + Send + Sync;

impl RejectionResponse {
    /// `{"error":"<code>"}` with the status and `Retry-After`:
    /// [`WebhookError::to_response`].
    pub fn json() -> Self {
        Self(Arc::new(|e: &WebhookError| e.to_response()))
    }

    /// RFC 9457 `application/problem+json`: `type`
    /// (`urn:tower-webhook:<code>`), `title` (the code), `status`, with
    /// `Retry-After` where it applies.
    pub fn problem_json() -> Self {
        Self(Arc::new(|e: &WebhookError| {
            let body = serde_json::json!({
                "type": format!("urn:tower-webhook:{}", e.code()),
                "title": e.code(),
                "status": e.status().as_u16(),
            });
            let mut res: http::Response<Bytes> = e.to_response();
            *res.body_mut() = Bytes::from(body.to_string());
            res.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/problem+json"),
            );
            res
        }))
    }

    /// A response of your own for each refusal.
    pub fn custom<F>(respond: F) -> Self
    where
        F: Fn(&WebhookError) -> http::Response<Bytes> + Send + Sync + 'static,
    {
        Self(Arc::new(respond))
    }

    /// The response to `e`.
    pub fn respond(&self, e: &WebhookError) -> http::Response<Bytes> {
        (self.0)(e)
    }
}

impl Default for RejectionResponse {
    fn default() -> Self {
        Self::json()
    }
}

impl fmt::Debug for RejectionResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RejectionResponse(..)")
    }
}

/// `Retry-After: secs`. The values a limiter usually asks for (up to five
/// minutes) are made once and shared: a refusal then allocates no header.
fn retry_after_value(secs: u64) -> http::HeaderValue {
    use std::sync::OnceLock;
    const SHARED: u64 = 300;
    static VALUES: OnceLock<Vec<http::HeaderValue>> = OnceLock::new();
    usize::try_from(secs)
        .ok()
        .filter(|_| secs <= SHARED)
        .and_then(|i| {
            VALUES
                .get_or_init(|| (0..=SHARED).map(http::HeaderValue::from).collect())
                .get(i)
                .cloned()
        })
        .unwrap_or_else(|| http::HeaderValue::from(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let e = WebhookError::RateLimited {
            retry_after: Duration::from_millis(1_001),
        };
        assert_eq!(e.retry_after(), Some(2));
        let e = WebhookError::InFlight {
            retry_after: Duration::ZERO,
        };
        assert_eq!(e.retry_after(), Some(1));
    }

    #[test]
    fn retry_after_of_the_longest_duration_saturates() {
        let e = WebhookError::RateLimited {
            retry_after: Duration::MAX,
        };
        assert_eq!(e.retry_after(), Some(u64::MAX));
    }

    #[test]
    fn tenant_errors_map_to_their_class() {
        let unknown = WebhookError::from(PrepareError::Verify(VerifyError::UnknownTenant));
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(unknown.code(), "invalid_signature");
        let invalid = WebhookError::Verify(VerifyError::InvalidTenant);
        assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
        assert_eq!(invalid.code(), "invalid_tenant");
        let down = WebhookError::from(PrepareError::Unavailable {
            retry_after: Duration::from_millis(2_500),
        });
        let res: http::Response<bytes::Bytes> = down.to_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "3");
        assert_eq!(res.body().as_ref(), br#"{"error":"secrets_unavailable"}"#);
    }

    #[test]
    fn response_names_only_the_class() {
        let res: http::Response<bytes::Bytes> =
            WebhookError::Verify(VerifyError::MalformedHeader("stripe-signature")).to_response();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(res.body().as_ref(), br#"{"error":"malformed_header"}"#);
    }

    #[test]
    fn bodies_are_the_code_in_json_and_retry_after_is_exact() {
        use std::time::Duration;
        let errors = [
            WebhookError::Verify(VerifyError::SignatureMismatch),
            WebhookError::Verify(VerifyError::MissingHeader("x")),
            WebhookError::MethodNotAllowed,
            WebhookError::BodyRead,
            WebhookError::RateLimited {
                retry_after: Duration::from_secs(7),
            },
        ];
        for e in errors {
            let code = e.code();
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
            let res: http::Response<bytes::Bytes> = e.to_response();
            let v: serde_json::Value = serde_json::from_slice(res.body()).expect("json");
            assert_eq!(v, serde_json::json!({ "error": code }));
        }
        for secs in [1u64, 7, 300, 301, 86_400, u64::MAX] {
            let e = WebhookError::RateLimited {
                retry_after: Duration::from_secs(secs),
            };
            let res: http::Response<bytes::Bytes> = e.to_response();
            assert_eq!(
                res.headers()[http::header::RETRY_AFTER],
                secs.to_string().as_str()
            );
        }
    }
}
