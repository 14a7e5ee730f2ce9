#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

pub mod body;
pub mod client;
pub mod error;
pub mod handshake;
mod key;
pub mod middleware;
pub mod observe;
pub mod payload;
pub mod providers;
pub mod rate_limit;
pub mod received;
pub mod secret;
pub mod secrets;
pub mod store;
pub mod verify;

/// Former name of [`secrets`].
#[deprecated(since = "0.1.0", note = "renamed `secrets`")]
#[doc(hidden)]
pub mod source {
    pub use crate::secrets::*;
}

/// Former name of [`received`].
#[deprecated(since = "0.1.0", note = "renamed `received`")]
#[doc(hidden)]
pub mod stored {
    pub use crate::received::*;
}

/// Former name of [`client`].
#[deprecated(since = "0.1.0", note = "renamed `client`")]
#[doc(hidden)]
pub mod net {
    pub use crate::client::*;
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod extract;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod server;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;

pub use error::{ConfigError, WebhookError};
#[cfg(feature = "axum")]
pub use extract::{Webhook, WebhookRejection};
pub use key::PublicKey;
pub use middleware::{StorePolicy, WebhookLayer, WebhookService};
pub use secret::Secret;
pub use store::{IdempotencyStore, MemoryStore};
pub use verify::{Clock, FixedClock, SystemClock, Tolerance, Verified, Verifier, VerifyError};
