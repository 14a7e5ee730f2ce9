#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod macros;

pub mod body;
pub mod error;
pub mod handshake;
mod key;
pub mod middleware;
pub mod net;
pub mod observe;
pub mod payload;
pub mod providers;
pub mod rate_limit;
pub mod secret;
pub mod source;
pub mod store;
pub mod stored;
pub mod verify;

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
