//! Verifying later what was received earlier: [`StoredDelivery`].
//!
//! When a queue sits between the HTTP edge and the worker, verify the
//! delivery against the time it **arrived**, not the time the worker picks
//! it up: a delivery that waited an hour in the queue is not stale. Store
//! the request as received (head and raw body) with its arrival time, and
//! verify it in the worker:
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use tower_webhook::providers::Slack;
//! use tower_webhook::received::StoredDelivery;
//! use tower_webhook::{testing, Secret, VerifyError};
//!
//! let arrived = SystemTime::now() - Duration::from_secs(3600);
//! let body = br#"{"event_id":"Ev1"}"#;
//! let headers = testing::slack("signing-secret", testing::unix(arrived), body);
//! let parts = testing::parts("/slack", headers);
//!
//! // at the edge: keep what arrived, e.g. as JSON in a queue
//! let queued = serde_json::to_string(&StoredDelivery::new(&parts, body, arrived))?;
//!
//! // in the worker, an hour later
//! let delivery: StoredDelivery = serde_json::from_str(&queued)?;
//! let slack = Slack::new(Secret::text("signing-secret")?);
//! assert!(delivery.verify(&slack).is_ok());
//! // against `now`, the same delivery is stale
//! assert_eq!(delivery.verify_at(&slack, SystemTime::now()).unwrap_err(), VerifyError::StaleTimestamp);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Security
//! The arrival time must come from your own edge, never from the request:
//! whoever sets it decides how old a delivery may be.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::request::Parts;
use serde::{Deserialize, Serialize};

use crate::error::WebhookError;
use crate::verify::{Verified, Verifier, VerifyError};

/// The time a request arrived, put in its extensions by your own code: the
/// [`WebhookLayer`](crate::WebhookLayer) then checks the delivery's
/// timestamp against it instead of the clock. This is how a worker replays
/// a stored delivery through the same stack (verification, de-duplication,
/// handler) an hour after it arrived; [`StoredDelivery::to_request`] sets
/// it. A client cannot set an extension: only code in your server can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedAt(pub SystemTime);

/// A request as received, with its arrival time; serializable for a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDelivery {
    /// Arrival time, in Unix milliseconds.
    pub received_at_ms: u64,
    /// The request method.
    pub method: String,
    /// The request URI as received (path and query; URL-signing providers
    /// also need the host, from the `host` header or a configured base URL).
    pub uri: String,
    /// The headers, in order, values base64-encoded (they may be bytes).
    pub headers: Vec<(String, String)>,
    /// The raw body, base64-encoded.
    pub body: String,
}

impl StoredDelivery {
    /// Keeps `parts` and `body` as received at `received_at`.
    pub fn new(parts: &Parts, body: &[u8], received_at: SystemTime) -> Self {
        let ms = received_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            received_at_ms: ms,
            method: parts.method.as_str().to_owned(),
            uri: parts.uri.to_string(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), STANDARD.encode(v.as_bytes())))
                .collect(),
            body: STANDARD.encode(body),
        }
    }

    /// When the delivery arrived.
    pub fn received_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.received_at_ms)
    }

    /// Verifies against the arrival time.
    ///
    /// # Errors
    /// [`VerifyError::MalformedHeader`] / [`VerifyError::MalformedBody`] when
    /// the stored form is corrupt, else the verifier's error.
    pub fn verify<V: Verifier + ?Sized>(&self, verifier: &V) -> Result<Verified, VerifyError> {
        self.verify_at(verifier, self.received_at())
    }

    /// Verifies against `now` instead (what a worker without this type
    /// would do; mostly for comparison).
    ///
    /// # Errors
    /// As [`verify`](Self::verify).
    pub fn verify_at<V: Verifier + ?Sized>(
        &self,
        verifier: &V,
        now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        let (parts, body) = self.decode()?;
        verifier.verify(&parts, &body, now)
    }

    /// As [`verify`](Self::verify), for a verifier that loads its secrets
    /// first ([`Tenants`](crate::secrets::Tenants)): runs
    /// [`Verifier::prepare`], then verifies against the arrival time.
    ///
    /// # Errors
    /// As [`verify`](Self::verify), as [`WebhookError::Verify`]; or
    /// [`WebhookError::SecretsUnavailable`] when the secrets could not be
    /// loaded (try again later).
    pub async fn verify_prepared<V: Verifier + ?Sized>(
        &self,
        verifier: &V,
    ) -> Result<Verified, WebhookError> {
        let (mut parts, body) = self.decode()?;
        let prepared = match verifier.prepare(&parts) {
            Some(prepare) => Some(prepare.await?),
            None => None,
        };
        if let Some(extensions) = prepared {
            parts.extensions.extend(extensions);
        }
        Ok(verifier.verify(&parts, &body, self.received_at())?)
    }

    /// The request head and raw body again.
    ///
    /// # Errors
    /// As [`verify`](Self::verify).
    pub fn decode(&self) -> Result<(Parts, Vec<u8>), VerifyError> {
        let corrupt = VerifyError::MalformedHeader("stored delivery");
        let mut req = http::Request::builder()
            .method(self.method.as_str())
            .uri(self.uri.as_str());
        for (k, v) in &self.headers {
            let value = STANDARD.decode(v).map_err(|_| corrupt)?;
            let value = http::HeaderValue::from_bytes(&value).map_err(|_| corrupt)?;
            req = req.header(k.as_str(), value);
        }
        let (parts, ()) = req.body(()).map_err(|_| corrupt)?.into_parts();
        let body = STANDARD
            .decode(&self.body)
            .map_err(|_| VerifyError::MalformedBody("stored body is not base64"))?;
        Ok((parts, body))
    }

    /// The request again, with its arrival time as a [`ReceivedAt`]
    /// extension: serve it to the same [`WebhookLayer`](crate::WebhookLayer)
    /// stack (with `tower::ServiceExt::oneshot`) and it is verified against
    /// the time it arrived, de-duplicated and handled like a live delivery.
    ///
    /// # Errors
    /// As [`verify`](Self::verify).
    pub fn to_request(&self) -> Result<http::Request<bytes::Bytes>, VerifyError> {
        let (mut parts, body) = self.decode()?;
        parts.extensions.insert(ReceivedAt(self.received_at()));
        Ok(http::Request::from_parts(parts, bytes::Bytes::from(body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_head_and_body_bytes() {
        let req = http::Request::post("/hook?x=1")
            .header("x-bin", http::HeaderValue::from_bytes(b"\xfe\xff").unwrap())
            .header("x-a", "1")
            .header("x-a", "2")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let stored = StoredDelivery::new(&parts, b"\x00body\xff", at);
        let json = serde_json::to_string(&stored).unwrap();
        let back: StoredDelivery = serde_json::from_str(&json).unwrap();
        assert_eq!(back.received_at(), at);
        let (p, body) = back.decode().unwrap();
        assert_eq!(body, b"\x00body\xff");
        assert_eq!(p.uri, "/hook?x=1");
        assert_eq!(p.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(p.headers["x-bin"].as_bytes(), b"\xfe\xff");
    }

    #[test]
    fn corrupt_stored_form_is_an_error_not_a_panic() {
        let mut s = StoredDelivery::new(
            &http::Request::post("/").body(()).unwrap().into_parts().0,
            b"",
            UNIX_EPOCH,
        );
        s.headers.push(("bad name".into(), "AAAA".into()));
        assert!(s.decode().is_err());
        s.headers.clear();
        s.body = "***".into();
        assert!(s.decode().is_err());
    }
}
