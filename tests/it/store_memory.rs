//! The sharded in-memory store: the shared contract, then its bounds (the same
//! capacity and admission tests as `MokaStore`).

use tower_webhook::MemoryStore;

store_conformance!(async { Some(MemoryStore::new()) });
store_bounds!(|capacity: usize| tower_webhook::MemoryStore::with_capacity(capacity));
