//! The floor every verifier is compared with: HMAC-SHA256 of the signed
//! content, keyed once and cloned per call (as the verifiers do), fed the
//! parts without joining them.
#![allow(dead_code)]

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// HMAC-SHA256 of the concatenation of `parts` under the pre-keyed `key`.
#[inline]
pub(crate) fn hmac_sha256(key: &Hmac<Sha256>, parts: &[&[u8]]) -> [u8; 32] {
    let mut m = key.clone();
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}
