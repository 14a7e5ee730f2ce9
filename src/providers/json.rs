//! Pulls a few fields (event id, event type) out of a JSON body without
//! building a document: other values are skipped, and the scan stops as soon
//! as every wanted field has been seen.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::verify::VerifyError;

/// Field paths, e.g. `&[&["id"], &["event", "type"]]`.
pub(crate) type Paths<'a> = &'a [&'a [&'a str]];

/// Returns the value at each path as text (strings as they are, numbers in
/// decimal, booleans as `true`/`false`); `None` where absent or of another
/// type. Only the first occurrence of a key counts. Invalid JSON yields what
/// was found before the error.
pub(crate) fn fields<const N: usize>(body: &[u8], paths: &[&[&str]; N]) -> [Option<String>; N] {
    // One top-level field that comes first (Stripe's `id`): read it
    // without starting a parser.
    if let [[key]] = paths.as_slice()
        && let Some(value) = leading_string(body, key)
    {
        let mut value = Some(value);
        return std::array::from_fn(|_| value.take());
    }
    scan(body, paths)
}

/// The value of `key` when it is the object's first field and a string
/// with neither escapes nor control characters, as in `{"id":"evt_1",…`;
/// `None` (scan the body) otherwise. Where it answers, the scan answers
/// the same: it too takes the first occurrence and stops there without
/// reading further. Whitespace is JSON's (space, tab, LF, CR).
fn leading_string(body: &[u8], key: &str) -> Option<String> {
    fn skip_ws(bytes: &[u8]) -> &[u8] {
        let n = bytes
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            .unwrap_or(bytes.len());
        bytes.get(n..).unwrap_or_default()
    }
    let rest = skip_ws(body).strip_prefix(b"{")?;
    let rest = skip_ws(rest).strip_prefix(b"\"")?;
    let rest = rest.strip_prefix(key.as_bytes())?.strip_prefix(b"\"")?;
    let rest = skip_ws(rest).strip_prefix(b":")?;
    let rest = skip_ws(rest).strip_prefix(b"\"")?;
    let end = rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    if rest.get(end) != Some(&b'"') {
        return None;
    }
    std::str::from_utf8(rest.get(..end)?)
        .ok()
        .map(str::to_owned)
}

/// [`fields`] for what a verifier hands on as signed metadata (the event
/// id it claims, the event type): the whole body is read, and a field that
/// occurs twice (two `"id"` keys, or two `"event"` objects each with a
/// `"type"`) is refused. Parsers disagree on which of two equal keys wins
/// (this scan would take the first, serde and JavaScript the last), so the
/// claimed id and the id a handler reads could differ.
///
/// # Errors
/// [`VerifyError::MalformedBody`] when a wanted field occurs twice.
pub(crate) fn unique_fields<const N: usize>(
    body: &[u8],
    paths: &[&[&str]; N],
) -> Result<[Option<String>; N], VerifyError> {
    let (slots, repeated) = run(body, paths, true);
    if repeated {
        return Err(VerifyError::MalformedBody("a signed field occurs twice"));
    }
    Ok(slots)
}

/// [`fields`] by a streaming parse that skips what it does not want.
fn scan<const N: usize>(body: &[u8], paths: &[&[&str]; N]) -> [Option<String>; N] {
    run(body, paths, false).0
}

/// The scan; `strict` reads to the end and reports a repeated field.
fn run<const N: usize>(
    body: &[u8],
    paths: &[&[&str]; N],
    strict: bool,
) -> ([Option<String>; N], bool) {
    let mut slots: [Option<String>; N] = std::array::from_fn(|_| None);
    let mut remaining = if strict { usize::MAX } else { N };
    let mut repeated = false;
    let mut seen = 0u64;
    let mut de = serde_json::Deserializer::from_slice(body);
    // An error is a real syntax error, our own early stop, or (strict) a
    // repeated field; the slots hold what was found in every case.
    let _ = Scan {
        paths,
        depth: 0,
        active: u64::MAX,
        slots: &mut slots,
        remaining: &mut remaining,
        strict: strict.then_some(Strict {
            seen: &mut seen,
            repeated: &mut repeated,
        }),
    }
    .deserialize(&mut de);
    (slots, repeated)
}

/// The bit of a strict scan's `seen` for path `i` at `depth` (eight paths
/// of eight levels; deeper ones go unchecked, and no scheme has them).
fn seen_bit(i: usize, depth: usize) -> Option<u64> {
    (i < 8 && depth < 8).then(|| 1u64 << (i * 8 + depth))
}

/// What a strict scan keeps: which keys of the wanted paths were met, and
/// whether one was met twice.
struct Strict<'s> {
    seen: &'s mut u64,
    repeated: &'s mut bool,
}

struct Scan<'p, 's> {
    paths: Paths<'p>,
    depth: usize,
    /// Bit i set: path i still matches the keys seen on the way down.
    active: u64,
    slots: &'s mut [Option<String>],
    remaining: &'s mut usize,
    strict: Option<Strict<'s>>,
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

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let mut leaf: Option<usize> = None;
            let mut deeper = 0u64;
            for (i, path) in self.paths.iter().enumerate().take(64) {
                if self.active & (1 << i) == 0 || path.get(self.depth) != Some(&&*key) {
                    continue;
                }
                // Strict: the key (a field, or an object on its path) must
                // not come twice where this path runs, or a parser that
                // keeps the last one would read another value.
                if let Some(strict) = self.strict.as_mut()
                    && let Some(bit) = seen_bit(i, self.depth)
                {
                    if *strict.seen & bit != 0 {
                        *strict.repeated = true;
                        return Err(de::Error::custom("repeated field"));
                    }
                    *strict.seen |= bit;
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
                    strict: self.strict.as_mut().map(|s| Strict {
                        seen: &mut *s.seen,
                        repeated: &mut *s.repeated,
                    }),
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

    /// The leading-field shortcut answers as the scan does, or leaves the
    /// body to it.
    #[test]
    fn a_leading_field_is_read_as_the_scan_reads_it() {
        let cases: &[&[u8]] = &[
            br#"{"id":"evt_1","type":"t"}"#,
            b" \t\r\n{ \n\"id\" \t: \r\"evt_2\" ,\"type\":\"t\"}",
            br#"{"id":""}"#,
            br#"{"id":"evt_3""#,
            br#"{"id":"evt_3" garbage"#,
            br#"{"id":"caf\u00e9"}"#,
            br#"{"id":"a\"b"}"#,
            br#"{"\u0069d":"evt_4"}"#,
            br#"{"idx":"no","id":"evt_5"}"#,
            br#"{"type":"t","id":"evt_6"}"#,
            br#"{"id":123}"#,
            br#"{"id":null,"x":1}"#,
            br#"{"id":{"nested":"x"}}"#,
            br#"[{"id":"evt_7"}]"#,
            br#""id""#,
            b"{\"id\":\"tab\there\"}",
            b"{\"id\":\"\xff\xfe\"}",
            "{\"id\":\"évt_8\"}".as_bytes(),
            b"\x0b{\"id\":\"evt_9\"}",
            b"",
        ];
        for body in cases {
            let fast = fields(body, &[&["id"]]);
            let slow = scan(body, &[&["id"]]);
            assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(body));
            if let Some(v) = leading_string(body, "id") {
                assert_eq!(slow, [Some(v)], "{:?}", String::from_utf8_lossy(body));
            }
        }
        // The shortcut does answer where it can.
        assert_eq!(
            leading_string(br#" {"id" : "evt_1", "x": 1}"#, "id").as_deref(),
            Some("evt_1")
        );
        assert_eq!(
            leading_string("{\"id\":\"évt\"}".as_bytes(), "id").as_deref(),
            Some("évt")
        );
        assert_eq!(leading_string(br#"{"id":"a\"b"}"#, "id"), None);
        assert_eq!(leading_string(br#"{"type":"t","id":"x"}"#, "id"), None);
    }

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

    #[test]
    fn a_strict_scan_refuses_any_repeated_key_on_a_wanted_path() {
        let paths: &[&[&str]; 2] = &[&["id"], &["event", "type"]];
        let ok = br#"{"id":"a","event":{"type":"t","id":"nested"},"data":{"id":"x","type":"y"}}"#;
        assert_eq!(
            unique_fields(ok, paths),
            Ok([Some("a".to_owned()), Some("t".to_owned())])
        );
        for repeated in [
            &br#"{"id":"a","id":"b"}"#[..],
            br#"{"id":{"x":1},"id":"b"}"#,
            br#"{"event":{"type":"t","type":"u"}}"#,
            br#"{"event":{"type":"t"},"event":{}}"#,
            br#"{"event":{"type":"t"},"event":null}"#,
        ] {
            assert_eq!(
                unique_fields(repeated, paths),
                Err(VerifyError::MalformedBody("a signed field occurs twice")),
                "{}",
                String::from_utf8_lossy(repeated)
            );
            // The lenient scan takes the first occurrence, as before.
            assert!(fields(repeated, paths).iter().any(Option::is_some));
        }
        // Not JSON (a form body): nothing found, nothing refused.
        assert_eq!(unique_fields(b"a=1&id=2", paths), Ok([None, None]));
    }
}
