//! The axum extractor [`Webhook<T>`].

use std::fmt;

use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::payload::{self, PayloadError};
use crate::verify::Verified;

/// A verified delivery: the payload parsed into `T` plus what verification
/// proved. Use it on a route behind [`WebhookLayer`](crate::WebhookLayer).
///
/// JSON bodies are parsed as JSON, `application/x-www-form-urlencoded` ones
/// as form data. Syntax errors answer 400, a valid body of the wrong shape
/// 422; either way the layer releases the claim, so a corrected retry is
/// processed.
///
/// ```
/// use axum::{routing::post, Router};
/// use serde::Deserialize;
/// use tower_webhook::{providers::Stripe, Secret, Webhook, WebhookLayer};
///
/// #[derive(Deserialize)]
/// struct Event { id: String, r#type: String }
///
/// async fn handle(hook: Webhook<Event>) -> &'static str {
///     assert_eq!(hook.meta.event_id(), Some(hook.payload.id.as_str()));
///     "ok"
/// }
///
/// # fn main() -> Result<(), tower_webhook::ConfigError> {
/// let app: Router = Router::new()
///     .route("/webhooks/stripe", post(handle))
///     .route_layer(WebhookLayer::new(Stripe::new(Secret::text("whsec_...")?)));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Webhook<T> {
    /// The body, parsed.
    pub payload: T,
    /// Provider, event id, event type, timestamp.
    pub meta: Verified,
}

impl<T, S> FromRequest<S> for Webhook<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (payload, meta) = extract(req, payload::parse).await?;
        Ok(Self { payload, meta })
    }
}

/// The verified request's body parsed by `parse`, with its metadata.
///
/// The request is ours to consume: the metadata is taken out of its
/// extensions (not cloned), and the body, already read and bounded by the
/// layer, is taken as it is (one frame: no copy).
async fn extract<T>(
    req: Request,
    parse: fn(Option<&str>, &[u8]) -> Result<T, PayloadError>,
) -> Result<(T, Verified), WebhookRejection> {
    let (mut parts, body) = req.into_parts();
    let Some(meta) = parts.extensions.remove::<Verified>() else {
        tracing::error!(
            "Webhook<T> used on a route without WebhookLayer: add `.route_layer(WebhookLayer::new(..))`"
        );
        return Err(WebhookRejection::MissingLayer);
    };
    let body = crate::middleware::read_body(body, usize::MAX)
        .await
        .map_err(|_| WebhookRejection::BodyRead)?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match parse(content_type, &body) {
        Ok(payload) => Ok((payload, meta)),
        Err(e) => {
            tracing::info!(error = %e, "webhook payload rejected");
            Err(WebhookRejection::Payload(e))
        }
    }
}

/// Like [`Webhook<T>`], for bodies that carry their JSON in a form's
/// `payload=` field (Slack interactivity, Papertrail, GitHub's form-encoded
/// hooks); a JSON body is taken as is. The rules of
/// [`payload::form_json`] apply: no `payload`
/// field is 422, invalid JSON in it 400, the wrong shape 422.
///
/// ```
/// use axum::{routing::post, Router};
/// use serde::Deserialize;
/// use tower_webhook::{extract::FormJson, providers::Slack, Secret, WebhookLayer};
///
/// #[derive(Deserialize)]
/// struct Interaction { r#type: String }
///
/// async fn handle(hook: FormJson<Interaction>) -> String {
///     hook.payload.r#type
/// }
///
/// # fn main() -> Result<(), tower_webhook::ConfigError> {
/// let app: Router = Router::new()
///     .route("/slack/interactivity", post(handle))
///     .route_layer(WebhookLayer::new(Slack::new(Secret::text("signing secret")?)));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct FormJson<T> {
    /// The JSON of the `payload` field (or of the body), parsed.
    pub payload: T,
    /// Provider, event id, event type, timestamp.
    pub meta: Verified,
}

impl<T, S> FromRequest<S> for FormJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = WebhookRejection;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (payload, meta) = extract(req, payload::parse_form_json).await?;
        Ok(Self { payload, meta })
    }
}

/// Why [`Webhook<T>`] could not be extracted.
#[derive(Debug)]
#[non_exhaustive]
pub enum WebhookRejection {
    /// The route has no [`WebhookLayer`](crate::WebhookLayer): a programming
    /// error, answered 500 and logged.
    MissingLayer,
    /// The body could not be read again.
    BodyRead,
    /// The body did not parse into `T`.
    Payload(PayloadError),
}

impl WebhookRejection {
    /// The status this rejection answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BodyRead => StatusCode::BAD_REQUEST,
            Self::Payload(e) => e.status(),
        }
    }

    /// The text of the response body.
    pub fn body_text(&self) -> &'static str {
        match self {
            Self::MissingLayer => {
                r#"{"error":"misconfigured","detail":"Webhook<T> extractor used without WebhookLayer"}"#
            }
            Self::BodyRead => r#"{"error":"body_read_error"}"#,
            Self::Payload(PayloadError::Syntax(_)) => r#"{"error":"invalid_payload"}"#,
            Self::Payload(PayloadError::Shape(_)) => r#"{"error":"unexpected_payload"}"#,
        }
    }
}

impl fmt::Display for WebhookRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.body_text())
    }
}

impl std::error::Error for WebhookRejection {}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        (
            self.status(),
            [(header::CONTENT_TYPE, "application/json")],
            self.body_text(),
        )
            .into_response()
    }
}
