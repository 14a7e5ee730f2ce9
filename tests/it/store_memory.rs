//! The in-memory store: the shared contract, then its bounds (capacity, and
//! a brand-new id always admitted when full).

use tower_webhook::MemoryStore;

store_conformance!(async { Some(MemoryStore::new()) });
store_bounds!(|capacity: usize| tower_webhook::MemoryStore::with_capacity(capacity));
