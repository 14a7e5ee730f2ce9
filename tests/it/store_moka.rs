//! The moka store: the shared contract, then its bounds (capacity, and
//! LRU admission: moka's default TinyLFU may refuse a brand-new id).

use tower_webhook::MokaStore;

store_conformance!(async { Some(MokaStore::new()) });
store_bounds!(|capacity: u64| tower_webhook::MokaStore::with_capacity(capacity));
