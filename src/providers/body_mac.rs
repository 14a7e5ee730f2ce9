//! The most common scheme of all: a MAC of the raw body in one header,
//! with the event id and type taken from a header, the body, or the MAC.
//! A provider of this kind is a [`BodyMac`] constant and a `body_mac_provider!`
//! line.

use std::time::SystemTime;

use http::request::Parts;

use super::json;
use super::kit::{self, Encoding, KeySet};
use crate::verify::{Verified, VerifyError};

/// Where a provider puts a piece of metadata.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field {
    /// An unsigned header: an id from here is only shown (the signature's
    /// digest is claimed), a type from here is marked unsigned.
    Header(&'static str),
    /// A field of the signed JSON body (a path of keys).
    Body(&'static [&'static str]),
    /// A header if present, else a body field.
    HeaderOrBody(&'static str, &'static [&'static str]),
    /// (ids only) Derived from the MAC: for providers that send no id but
    /// resend the same signed body on retry.
    Mac,
}

/// A body-MAC scheme: signature header, its prefix and encoding, and where
/// the event id and type live.
#[derive(Debug)]
pub(crate) struct BodyMac {
    pub(crate) provider: &'static str,
    pub(crate) header: &'static str,
    pub(crate) prefix: &'static str,
    pub(crate) encoding: Encoding,
    pub(crate) id: Field,
    pub(crate) ty: Field,
}

const NO_PATH: &[&str] = &[];

fn body_path(f: Field) -> &'static [&'static str] {
    match f {
        Field::Body(p) | Field::HeaderOrBody(_, p) => p,
        Field::Header(_) | Field::Mac => NO_PATH,
    }
}

impl BodyMac {
    /// Verifies the body's MAC under `keys`, then reads the metadata.
    pub(crate) fn verify(
        &self,
        keys: &KeySet,
        parts: &Parts,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, VerifyError> {
        let header = kit::signature(parts, self.header)?;
        let candidates = kit::prefixed(header, self.prefix, self.encoding);
        let m = keys.verify(now, &[body], &candidates)?;
        let mut v = Verified::new(self.provider)
            .with_key(m.key())
            .with_content_digest(m.mac.digest32());

        let header_value = |f: Field| -> Result<Option<&str>, VerifyError> {
            match f {
                Field::Header(h) | Field::HeaderOrBody(h, _) => {
                    Ok(kit::header(parts, h)?.filter(|s| !s.is_empty()))
                }
                Field::Body(_) | Field::Mac => Ok(None),
            }
        };
        let id_header = header_value(self.id)?;
        let ty_header = header_value(self.ty)?;
        // One pass over the body for whatever is still missing.
        let want = |f: Field, found: bool| if found { NO_PATH } else { body_path(f) };
        let [id_body, ty_body] = match (
            want(self.id, id_header.is_some()),
            want(self.ty, ty_header.is_some()),
        ) {
            (NO_PATH, NO_PATH) => [None, None],
            (a, b) => json::unique_fields(body, &[a, b])?,
        };

        // A header id is unsigned: it is shown, and the content digest set
        // above is what the layer claims.
        if let Some(id) = id_header {
            v = v.with_event_id(id, false);
        } else if let Some(id) = id_body {
            v = v.with_event_id(id, true);
        } else if matches!(self.id, Field::Mac) {
            v = v.with_event_id(m.mac.id_hex(), true);
        }
        match (ty_header, ty_body) {
            (Some(ty), _) => v = v.with_event_type(ty, false),
            (None, Some(ty)) => v = v.with_event_type(ty, true),
            (None, None) => {}
        }
        Ok(v)
    }
}

/// A provider made of one [`BodyMac`] scheme: the struct, its builder
/// methods (`new`, `add_secret`) and its `Verifier` impl.
macro_rules! body_mac_provider {
    ($(#[$doc:meta])* $ty:ident, $alg:expr, $scheme:expr) => {
        $(#[$doc])*
        pub struct $ty {
            keys: $crate::providers::kit::KeySet,
        }

        hmac_provider!($ty, $alg);

        impl $ty {
            fn from_keys(keys: $crate::providers::kit::KeySet) -> Self {
                Self { keys }
            }
        }

        impl $crate::verify::Verifier for $ty {
            fn provider(&self) -> &'static str {
                $scheme.provider
            }

            fn verify(
                &self,
                parts: &http::request::Parts,
                body: &[u8],
                now: std::time::SystemTime,
            ) -> Result<$crate::verify::Verified, $crate::verify::VerifyError> {
                $scheme.verify(&self.keys, parts, body, now)
            }
        }
    };
}
