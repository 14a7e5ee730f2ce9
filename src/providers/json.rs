//! Pulls a few fields (event id, event type) out of a JSON body without
//! building a document: other values are skipped, and the scan stops as soon
//! as every wanted field has been seen.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// Field paths, e.g. `&[&["id"], &["event", "type"]]`.
pub(crate) type Paths<'a> = &'a [&'a [&'a str]];

/// Returns the value at each path as text (strings as they are, numbers in
/// decimal, booleans as `true`/`false`); `None` where absent or of another
/// type. Only the first occurrence of a key counts. Invalid JSON yields what
/// was found before the error.
pub(crate) fn fields<const N: usize>(body: &[u8], paths: &[&[&str]; N]) -> [Option<String>; N] {
    let mut slots: [Option<String>; N] = std::array::from_fn(|_| None);
    let mut remaining = N;
    let mut de = serde_json::Deserializer::from_slice(body);
    // An error is either a real syntax error or our own early stop; the
    // slots hold what was found in both cases.
    let _ = Scan {
        paths,
        depth: 0,
        active: u64::MAX,
        slots: &mut slots,
        remaining: &mut remaining,
    }
    .deserialize(&mut de);
    slots
}

struct Scan<'p, 's> {
    paths: Paths<'p>,
    depth: usize,
    /// Bit i set: path i still matches the keys seen on the way down.
    active: u64,
    slots: &'s mut [Option<String>],
    remaining: &'s mut usize,
}

/// An object key, borrowed from the body unless it holds escapes (serde's
/// own `Cow<str>` always allocates).
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> DeserializeSeed<'de> for Scan<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let mut leaf: Option<usize> = None;
            let mut deeper = 0u64;
            for (i, path) in self.paths.iter().enumerate().take(64) {
                if self.active & (1 << i) == 0 || path.get(self.depth) != Some(&&*key) {
                    continue;
                }
                if path.len() == self.depth + 1 {
                    if self.slots.get(i).is_some_and(Option::is_none) {
                        leaf = Some(i);
                    }
                } else {
                    deeper |= 1 << i;
                }
            }
            if let Some(i) = leaf {
                let value = map.next_value::<Scalar>()?.0;
                if let (Some(slot), Some(v)) = (self.slots.get_mut(i), value) {
                    *slot = Some(v);
                    *self.remaining -= 1;
                }
            } else if deeper != 0 {
                map.next_value_seed(Scan {
                    paths: self.paths,
                    depth: self.depth + 1,
                    active: deeper,
                    slots: &mut *self.slots,
                    remaining: &mut *self.remaining,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            if *self.remaining == 0 {
                // Stop reading: the rest of the body is never scanned.
                // serde_json then finds no closing brace where it expects
                // one and fails with a syntax error, which the caller
                // ignores (one small allocation, no message built).
                return Ok(());
            }
        }
        Ok(())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A scalar as text; objects and arrays are skipped and give `None`.
struct Scalar(Option<String>);

impl<'de> serde::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_owned())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Scalar, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Scalar, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_top_level_and_nested_fields() {
        let body = br#"{"token":"x","event":{"user":"U1","type":"app_mention"},"type":"event_callback","event_id":"Ev1","n":5}"#;
        let [id, inner, outer, n] = fields(
            body,
            &[&["event_id"], &["event", "type"], &["type"], &["n"]],
        );
        assert_eq!(id.as_deref(), Some("Ev1"));
        assert_eq!(inner.as_deref(), Some("app_mention"));
        assert_eq!(outer.as_deref(), Some("event_callback"));
        assert_eq!(n.as_deref(), Some("5"));
    }

    #[test]
    fn stops_early_and_tolerates_garbage_after() {
        let [ty] = fields(br#"{"type":"a.b", this is not json"#, &[&["type"]]);
        assert_eq!(ty.as_deref(), Some("a.b"));
    }

    #[test]
    fn absent_wrong_type_or_invalid_gives_none() {
        let [a, b] = fields(br#"{"id":{"x":1},"type":[1]}"#, &[&["id"], &["type"]]);
        assert_eq!((a, b), (None, None));
        let [c] = fields(b"\xff\xfe", &[&["id"]]);
        assert_eq!(c, None);
        let deep = "[".repeat(10_000);
        let [d] = fields(deep.as_bytes(), &[&["id"]]);
        assert_eq!(d, None);
    }

    #[test]
    fn first_occurrence_wins_and_escapes_are_decoded() {
        let [id] = fields(br#"{"i\u0064":"evt_\u0031","id":"evt_2"}"#, &[&["id"]]);
        assert_eq!(id.as_deref(), Some("evt_1"));
    }
}
