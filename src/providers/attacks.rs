//! Attack shapes every provider's unit tests run (test builds only): a
//! valid delivery is taken apart header by header and byte by byte, and
//! every variant must be refused with an error, never a panic.

use std::time::SystemTime;

use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::kit::{Algorithm, Encoding, KeySet};
use crate::secret::Secret;
use crate::verify::{Verified, Verifier, VerifyError};

/// One valid delivery.
pub(crate) struct Case {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
    pub(crate) now: SystemTime,
}

/// Headers from `(name, value)` pairs.
pub(crate) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

pub(crate) fn parts(headers: &HeaderMap) -> Parts {
    let mut req = http::Request::post("/hook").body(()).unwrap();
    *req.headers_mut() = headers.clone();
    req.into_parts().0
}

/// The MAC of `parts` with `secret` as text, encoded.
pub(crate) fn mac(alg: Algorithm, secret: &str, parts: &[&[u8]], enc: Encoding) -> String {
    KeySet::new(alg, &Secret::text(secret).unwrap())
        .sign(SystemTime::UNIX_EPOCH, parts)
        .unwrap()
        .encode(enc)
}

impl Case {
    pub(crate) fn run(&self, v: &dyn Verifier) -> Result<Verified, VerifyError> {
        v.verify(&parts(&self.headers), &self.body, self.now)
    }
}

/// Runs the shapes against `v`:
/// - the case as given verifies;
/// - `signed_headers`: each one removed, duplicated, emptied, given a
///   changed character, truncated, or made huge, is refused;
/// - with `body_signed`, a flipped bit anywhere in the body is refused.
pub(crate) fn assert_attack_shapes(
    v: &dyn Verifier,
    case: &Case,
    signed_headers: &[&str],
    body_signed: bool,
) {
    case.run(v).expect("the unmodified delivery verifies");
    let refuse = |h: HeaderMap, body: &[u8], what: &str| {
        let got = v.verify(&parts(&h), body, case.now);
        assert!(got.is_err(), "{what}: accepted, expected an error");
    };
    for name in signed_headers {
        let original = case
            .headers
            .get(*name)
            .unwrap_or_else(|| panic!("case has header {name}"))
            .as_bytes()
            .to_vec();
        let mut variants: Vec<(String, Option<Vec<u8>>)> = vec![
            ("removed".into(), None),
            ("emptied".into(), Some(Vec::new())),
            ("huge".into(), Some(vec![b'a'; 10_000])),
            ("non-ascii".into(), Some(vec![0xff, 0xfe, b'='])),
        ];
        if original.len() > 2 {
            variants.push((
                "truncated".into(),
                Some(original[..original.len() - 2].to_vec()),
            ));
            variants.push(("extended".into(), Some([&original[..], b"00"].concat())));
        }
        for i in 0..original.len() {
            let mut changed = original.clone();
            changed[i] = if changed[i] == b'a' { b'b' } else { b'a' };
            if changed != original {
                variants.push((format!("char {i} changed"), Some(changed)));
            }
        }
        for (what, value) in variants {
            let mut h = case.headers.clone();
            match value {
                Some(val) => {
                    h.insert(
                        HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        HeaderValue::from_bytes(&val).unwrap(),
                    );
                }
                None => {
                    h.remove(*name);
                }
            }
            refuse(h, &case.body, &format!("{name} {what}"));
        }
        let mut dup = case.headers.clone();
        dup.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(&original).unwrap(),
        );
        refuse(dup, &case.body, &format!("{name} duplicated"));
    }
    if body_signed {
        for i in 0..case.body.len() {
            for bit in [0x01u8, 0x80] {
                let mut body = case.body.clone();
                body[i] ^= bit;
                refuse(
                    case.headers.clone(),
                    &body,
                    &format!("body byte {i} ^ {bit:#x}"),
                );
            }
        }
        refuse(case.headers.clone(), &[], "empty body");
        let mut longer = case.body.clone();
        longer.push(b' ');
        refuse(case.headers.clone(), &longer, "body with a byte appended");
    }
}

/// A wrong secret is refused, and a verifier holding the wrong one plus the
/// right one (rotation) accepts and reports the right one's label.
pub(crate) fn assert_rotation<V: Verifier>(
    case: &Case,
    make: impl Fn(Secret) -> V,
    add: impl Fn(V, Secret) -> V,
    right: Secret,
    wrong: Secret,
) {
    let expired = make(right.clone().expires_at(SystemTime::UNIX_EPOCH));
    assert_eq!(case.run(&expired).err(), Some(VerifyError::NoActiveSecret));
    let only_wrong = make(wrong.clone());
    assert!(case.run(&only_wrong).is_err(), "wrong secret accepted");
    let both = add(make(wrong.with_label("old")), right.with_label("new"));
    let v = case.run(&both).expect("rotated secret accepted");
    assert_eq!(v.key_label(), Some("new"));
}
