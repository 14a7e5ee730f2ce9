//! Secrets that change at run time: [`Swappable`] replaces a verifier (and
//! so its whole set of secrets) without rebuilding the layer; [`Tenants`]
//! picks each delivery's secrets by the tenant the request names, loading
//! them through an async [`Resolve`]r and caching them.
//!
//! For secrets that do not change, give the provider its
//! [`Secret`](crate::Secret)s directly: several may be active at once
//! (rotation), each with a label and an expiry.
//!
//! A delivery being verified keeps the set it started with; the next one
//! sees the new set. Reads are lock-free (`arc-swap`): the hot path costs
//! one atomic load, whatever the rate of swaps.
//!
//! ```
//! use std::time::SystemTime;
//! use tower_webhook::providers::GitHub;
//! use tower_webhook::secrets::Swappable;
//! use tower_webhook::{testing, Secret, Verifier, WebhookLayer};
//!
//! let verifier = Swappable::new(GitHub::new(Secret::text("old")?));
//! let handle = verifier.handle();
//! let _layer = WebhookLayer::new(verifier.clone()); // serve it as usual
//!
//! // later, on a config reload: both secrets active while senders switch
//! handle.swap(GitHub::new(Secret::text("new")?).add_secret(Secret::text("old")?));
//! let body = b"{}";
//! let parts = testing::parts("/", testing::github("new", "d-1", "push", body));
//! assert!(verifier.verify(&parts, body, SystemTime::now()).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use http::request::Parts;

use crate::verify::{PrepareFuture, Verified, Verifier, VerifyError};

mod tenants;

pub use tenants::{MAX_TENANT_LEN, Resolve, TenantFrom, Tenants};

/// A verifier whose secrets can be replaced while it serves: swap in a new
/// verifier through a [`SwapHandle`]. Clones share the same slot.
pub struct Swappable<V> {
    slot: Arc<ArcSwap<V>>,
    provider: &'static str,
    // The provider's media types, not the secrets': a swap keeps them.
    content_types: Arc<[&'static str]>,
}

impl<V> Clone for Swappable<V> {
    fn clone(&self) -> Self {
        Self {
            slot: Arc::clone(&self.slot),
            provider: self.provider,
            content_types: Arc::clone(&self.content_types),
        }
    }
}

impl<V: Verifier> Swappable<V> {
    /// Serves `verifier` until it is swapped.
    pub fn new(verifier: V) -> Self {
        let provider = verifier.provider();
        let content_types = Arc::from(verifier.content_types());
        Self {
            slot: Arc::new(ArcSwap::from_pointee(verifier)),
            provider,
            content_types,
        }
    }

    /// A handle that swaps the verifier of this value and all its clones.
    pub fn handle(&self) -> SwapHandle<V> {
        SwapHandle {
            slot: Arc::clone(&self.slot),
        }
    }

    /// The verifier in use now.
    pub fn current(&self) -> Arc<V> {
        self.slot.load_full()
    }
}

impl<V: Verifier> Verifier for Swappable<V> {
    fn provider(&self) -> &'static str {
        self.provider
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        self.slot.load().verify(parts, body, now)
    }

    fn verify_deferred(
        &self,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        self.slot.load().verify_deferred(parts, body, now)
    }

    fn content_types(&self) -> &[&'static str] {
        &self.content_types
    }

    fn prepare<'a>(&'a self, parts: &'a Parts) -> Option<PrepareFuture<'a>> {
        let current = self.slot.load_full();
        // Ask first without boxing: most verifiers have nothing to prepare,
        // and their `None` must stay free. The future borrows the verifier,
        // so the one that prepares is asked again inside a future that
        // owns it (a swap in between changes nothing: it prepares for the
        // verifier it holds, whose extensions any later one of the same
        // type reads).
        drop(current.prepare(parts)?);
        Some(Box::pin(async move {
            match current.prepare(parts) {
                Some(fut) => fut.await,
                None => Ok(http::Extensions::new()),
            }
        }))
    }
}

impl<V: fmt::Debug> fmt::Debug for Swappable<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Swappable")
            .field("current", &self.slot.load())
            .finish()
    }
}

/// Replaces the verifier of a [`Swappable`].
pub struct SwapHandle<V> {
    slot: Arc<ArcSwap<V>>,
}

impl<V> Clone for SwapHandle<V> {
    fn clone(&self) -> Self {
        Self {
            slot: Arc::clone(&self.slot),
        }
    }
}

impl<V> fmt::Debug for SwapHandle<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SwapHandle")
    }
}

impl<V: Verifier> SwapHandle<V> {
    /// From the next delivery on, `verifier` (with its secrets) is used.
    pub fn swap(&self, verifier: V) {
        if verifier.provider() != self.slot.load().provider() {
            tracing::warn!(
                from = self.slot.load().provider(),
                to = verifier.provider(),
                "swapped in a verifier of another provider"
            );
        }
        self.slot.store(Arc::new(verifier));
    }
}
