//! Building blocks shared by the providers: pre-keyed MACs, signature
//! decoding into stack buffers, header lookups without allocation, timestamp
//! parsing. A new HMAC provider is a few lines over these.

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use http::request::Parts;
use subtle::ConstantTimeEq;

use crate::secret::Secret;
use crate::verify::{KeyTag, VerifyError};

/// The hash under an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA1 (legacy GitHub, Intercom, Twilio, Mandrill).
    Sha1,
    /// HMAC-SHA256 (nearly everyone).
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

/// How a signature is written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// Lowercase hexadecimal; upper case does not match (the providers
    /// compare the exact text).
    Hex,
    /// Standard, padded base64.
    Base64,
}

/// A MAC output or a decoded signature, on the stack.
#[derive(Clone, Copy)]
pub(crate) struct Sig {
    // 64 bytes at most; two more so that base64 can decode in place (its
    // output estimate for 88 characters is 66).
    buf: [u8; 66],
    len: u8,
}

impl Sig {
    const MAX_LEN: usize = 64;
    const EMPTY: Sig = Sig {
        buf: [0; 66],
        len: 0,
    };

    fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > Self::MAX_LEN {
            return None;
        }
        let mut sig = Self::EMPTY;
        sig.buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        sig.len = u8::try_from(bytes.len()).ok()?;
        Some(sig)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// Compares in constant time (`subtle`; lengths are public: a MAC's
    /// length is its algorithm's, and slices of two lengths are unequal).
    pub(crate) fn ct_eq(&self, other: &Sig) -> bool {
        bool::from(self.as_bytes().ct_eq(other.as_bytes()))
    }

    /// The first 32 bytes, zero-padded (a content digest for dedup).
    pub(crate) fn digest32(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (o, b) in out.iter_mut().zip(self.as_bytes()) {
            *o = *b;
        }
        out
    }

    /// Decodes `text` in `encoding`; `None` when it cannot be a signature
    /// (wrong alphabet, upper-case hex, longer than 64 bytes).
    pub(crate) fn decode(text: &[u8], encoding: Encoding) -> Option<Self> {
        match encoding {
            Encoding::Hex => {
                // Lower-case only, checked without an exit per byte (the
                // fold compiles to vector compares).
                let lower_hex = |t: &[u8]| {
                    t.iter().fold(true, |ok, &b| {
                        ok & (b.is_ascii_digit() | b.wrapping_sub(b'a').lt(&6))
                    })
                };
                if !text.len().is_multiple_of(2) || text.len() > 128 || !lower_hex(text) {
                    return None;
                }
                let mut sig = Self::EMPTY;
                let out = sig.buf.get_mut(..text.len() / 2)?;
                hex::decode_to_slice(text, out).ok()?;
                sig.len = u8::try_from(text.len() / 2).ok()?;
                Some(sig)
            }
            Encoding::Base64 => {
                if text.len() > 88 {
                    return None;
                }
                let mut sig = Self::EMPTY;
                let n = STANDARD.decode_slice(text, &mut sig.buf).ok()?;
                if n > Self::MAX_LEN {
                    return None;
                }
                sig.len = u8::try_from(n).ok()?;
                Some(sig)
            }
        }
    }

    /// A short id derived from the MAC (hex of a domain-separated hash), for
    /// providers that sign the whole body but send no event id: a retry
    /// carries the same body, hence the same id.
    pub(crate) fn id_hex(&self) -> String {
        use sha2::Digest as _;
        // A hash of the MAC, not the MAC: ids go into logs and store keys.
        let h = sha2::Sha256::new_with_prefix(b"tower-webhook event id\0")
            .chain_update(self.as_bytes())
            .finalize();
        hex::encode(h.get(..16).unwrap_or_default())
    }

    /// Writes the signature in `encoding` (signers, handshakes).
    #[cfg_attr(not(feature = "test-util"), allow(dead_code))]
    pub(crate) fn encode(&self, encoding: Encoding) -> String {
        match encoding {
            Encoding::Hex => hex::encode(self.as_bytes()),
            Encoding::Base64 => STANDARD.encode(self.as_bytes()),
        }
    }
}

/// A short list of candidate signatures taken from one header. More than
/// [`Candidates::MAX`] are not looked at: no sender sends that many.
pub(crate) struct Candidates {
    // Empty slots are `None`, so that a new list writes eight tags, not
    // half a kilobyte of zeroes.
    items: [Option<Sig>; Self::MAX],
    len: usize,
}

impl Candidates {
    pub(crate) const MAX: usize = 8;

    pub(crate) fn new() -> Self {
        Self {
            items: [None; Self::MAX],
            len: 0,
        }
    }

    /// Adds the decoded form of `text`; text that cannot be a signature is
    /// skipped (it cannot match anything).
    pub(crate) fn push_encoded(&mut self, text: &[u8], encoding: Encoding) {
        if let Some(sig) = Sig::decode(text, encoding) {
            self.push(sig);
        }
    }

    pub(crate) fn push(&mut self, sig: Sig) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = Some(sig);
            self.len += 1;
        }
    }

    pub(crate) fn one(text: &[u8], encoding: Encoding) -> Self {
        let mut c = Self::new();
        c.push_encoded(text, encoding);
        c
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Sig> {
        self.items.iter().take(self.len).flatten()
    }
}

/// An HMAC already keyed with one secret: the key schedule runs once, when
/// the verifier is built, and each delivery clones the state.
#[derive(Clone)]
enum KeyedMac {
    Sha1(Hmac<sha1::Sha1>),
    Sha256(Hmac<sha2::Sha256>),
    Sha512(Hmac<sha2::Sha512>),
}

impl KeyedMac {
    fn new(alg: Algorithm, key: &[u8]) -> Self {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        match alg {
            Algorithm::Sha1 => Self::Sha1(keyed(key)),
            Algorithm::Sha256 => Self::Sha256(keyed(key)),
            Algorithm::Sha512 => Self::Sha512(keyed(key)),
        }
    }

    fn compute(&self, parts: &[&[u8]]) -> Sig {
        fn run<M: Mac + Clone>(m: &M, parts: &[&[u8]]) -> Sig {
            let mut m = m.clone();
            for p in parts {
                m.update(p);
            }
            Sig::from_slice(&m.finalize().into_bytes()).unwrap_or(Sig::EMPTY)
        }
        match self {
            Self::Sha1(m) => run(m, parts),
            Self::Sha256(m) => run(m, parts),
            Self::Sha512(m) => run(m, parts),
        }
    }
}

fn keyed<M: Mac + KeyInit>(key: &[u8]) -> M {
    match <M as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        // Unreachable for HMAC (any key length is valid); an empty-key MAC
        // would still never match a real signature made with `key`.
        Err(_) => <M as KeyInit>::new(&Default::default()),
    }
}

struct Key {
    mac: KeyedMac,
    label: Option<Arc<str>>,
    expires_at: Option<SystemTime>,
    retiring: bool,
}

impl Key {
    fn new(alg: Algorithm, s: &Secret) -> Self {
        Self {
            mac: KeyedMac::new(alg, s.expose()),
            label: s.label().cloned(),
            expires_at: s.expiry(),
            retiring: s.is_retiring(),
        }
    }
}

/// The secrets of one verifier, pre-keyed for one algorithm.
pub(crate) struct KeySet {
    alg: Algorithm,
    keys: Vec<Key>,
}

/// Which key matched, and the MAC it produced.
pub(crate) struct Match<'a> {
    /// The key's place in the set (the order secrets were added in).
    pub(crate) index: usize,
    pub(crate) label: Option<&'a Arc<str>>,
    pub(crate) retiring: bool,
    /// The MAC that matched: the signature as the request carried it, and
    /// what identifies the delivery ([`Sig::digest32`]): it depends on
    /// nothing the receiver configures (the order of its secrets, the URL
    /// variant that matched) and on nothing outside the signature.
    pub(crate) mac: Sig,
}

impl Match<'_> {
    /// The matched key's label and retiring mark, for
    /// [`Verified`](crate::Verified).
    pub(crate) fn key(&self) -> KeyTag {
        KeyTag {
            label: self.label.cloned(),
            retiring: self.retiring,
        }
    }
}

impl KeySet {
    pub(crate) fn new(alg: Algorithm, secret: &Secret) -> Self {
        Self {
            alg,
            keys: vec![Key::new(alg, secret)],
        }
    }

    /// A set without any key yet (a verifier that holds only public keys);
    /// verifying against it gives [`VerifyError::NoActiveSecret`].
    pub(crate) fn empty(alg: Algorithm) -> Self {
        Self {
            alg,
            keys: Vec::new(),
        }
    }

    /// The MAC of `parts` under the first active key (signers, handshakes).
    #[cfg_attr(not(feature = "test-util"), allow(dead_code))]
    pub(crate) fn sign(&self, now: SystemTime, parts: &[&[u8]]) -> Option<Sig> {
        self.active(now).next().map(|(_, k)| k.mac.compute(parts))
    }

    fn active(&self, now: SystemTime) -> impl Iterator<Item = (usize, &Key)> {
        self.keys
            .iter()
            .enumerate()
            .filter(move |(_, k)| k.expires_at.is_none_or(|at| now < at))
    }

    /// The MAC of `parts` under the key at `index` (see [`Match::index`]).
    pub(crate) fn mac_with(&self, index: usize, parts: &[&[u8]]) -> Option<Sig> {
        self.keys.get(index).map(|k| k.mac.compute(parts))
    }

    /// Computes the MAC of the concatenated `parts` under every active key
    /// and compares it, in constant time, with every candidate.
    ///
    /// # Errors
    /// [`VerifyError::SignatureMismatch`], or [`VerifyError::NoActiveSecret`]
    /// when every key has expired.
    pub(crate) fn verify(
        &self,
        now: SystemTime,
        parts: &[&[u8]],
        candidates: &Candidates,
    ) -> Result<Match<'_>, VerifyError> {
        let mut any = false;
        for (index, key) in self.active(now) {
            any = true;
            let mac = key.mac.compute(parts);
            for c in candidates.iter() {
                if mac.ct_eq(c) {
                    return Ok(Match {
                        index,
                        label: key.label.as_ref(),
                        retiring: key.retiring,
                        mac,
                    });
                }
            }
        }
        if any {
            Err(VerifyError::SignatureMismatch)
        } else {
            Err(VerifyError::NoActiveSecret)
        }
    }

    /// Adds one more secret (rotation).
    pub(crate) fn add(&mut self, secret: &Secret) {
        self.keys.push(Key::new(self.alg, secret));
    }
}

/// Whether a token configured for a header can arrive as configured: HTTP
/// strips spaces and tabs at both ends of a field value, so a token with
/// them there never matches.
pub(crate) fn survives_header(token: &[u8]) -> bool {
    let edge = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
    !edge(token.first()) && !edge(token.last())
}

/// A header name for the lookups below, and its text for errors: a
/// `&'static str` (parsed at each lookup) or a `&'static HeaderName` kept
/// in a `static` (parsed once: the hot providers use these).
pub(crate) trait Name: Copy {
    /// What the header map is searched with.
    type Key: http::header::AsHeaderName;
    fn key(self) -> Self::Key;
    fn label(self) -> &'static str;
}

impl Name for &'static str {
    type Key = Self;
    fn key(self) -> Self {
        self
    }
    fn label(self) -> &'static str {
        self
    }
}

impl Name for &'static http::HeaderName {
    type Key = Self;
    fn key(self) -> Self {
        self
    }
    fn label(self) -> &'static str {
        self.as_str()
    }
}

/// The value of header `name`, if present once.
///
/// # Errors
/// [`VerifyError::MalformedHeader`] if it is repeated or not visible ASCII.
pub(crate) fn header(parts: &Parts, name: impl Name) -> Result<Option<&str>, VerifyError> {
    header_as(parts, name.key(), name.label())
}

/// [`header`] for a name known at run time; errors name it `label`.
pub(crate) fn header_as<'a, K: http::header::AsHeaderName>(
    parts: &'a Parts,
    name: K,
    label: &'static str,
) -> Result<Option<&'a str>, VerifyError> {
    single(parts.headers.get_all(name), label)
}

/// The one value among `all` (the values of one header, looked up once by
/// the caller), as [`header`] reads it.
///
/// # Errors
/// [`VerifyError::MalformedHeader`] naming `label` if it is repeated or not
/// visible ASCII.
pub(crate) fn single<'a>(
    all: http::header::GetAll<'a, http::HeaderValue>,
    label: &'static str,
) -> Result<Option<&'a str>, VerifyError> {
    once(all, label)?
        .map(|v| v.to_str().map_err(|_| VerifyError::MalformedHeader(label)))
        .transpose()
}

/// The value among `all`, if any; every reading of a header sent at most
/// once goes through here.
///
/// # Errors
/// [`VerifyError::MalformedHeader`] naming `label` when repeated.
fn once<'a>(
    all: http::header::GetAll<'a, http::HeaderValue>,
    label: &'static str,
) -> Result<Option<&'a http::HeaderValue>, VerifyError> {
    let mut all = all.iter();
    let first = all.next();
    if all.next().is_some() {
        return Err(VerifyError::MalformedHeader(label));
    }
    Ok(first)
}

/// The raw bytes of a header sent at most once: a token compared byte for
/// byte, which may be any text a header can carry (UTF-8 included).
///
/// # Errors
/// [`VerifyError::MalformedHeader`] naming `label` when repeated.
pub(crate) fn header_bytes<'a, K: http::header::AsHeaderName>(
    parts: &'a Parts,
    name: K,
    label: &'static str,
) -> Result<Option<&'a [u8]>, VerifyError> {
    Ok(once(parts.headers.get_all(name), label)?.map(http::HeaderValue::as_bytes))
}

/// A required header (not the signature).
///
/// # Errors
/// [`VerifyError::MissingHeader`] when absent or empty, else as [`header`].
pub(crate) fn required(parts: &Parts, name: impl Name) -> Result<&str, VerifyError> {
    required_in(parts.headers.get_all(name.key()), name.label())
}

/// [`required`] over the values of one header already looked up.
///
/// # Errors
/// As [`required`], naming `label`.
pub(crate) fn required_in<'a>(
    all: http::header::GetAll<'a, http::HeaderValue>,
    label: &'static str,
) -> Result<&'a str, VerifyError> {
    match single(all, label)? {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(VerifyError::MissingHeader(label)),
    }
}

/// A required header whose value may be any UTF-8 (PHP senders put names
/// with accents in headers), not only visible ASCII.
///
/// # Errors
/// [`VerifyError::MissingHeader`] when absent or empty,
/// [`VerifyError::MalformedHeader`] when repeated or not UTF-8.
pub(crate) fn required_utf8<'a>(
    parts: &'a Parts,
    name: &'static str,
) -> Result<&'a str, VerifyError> {
    let value = once(parts.headers.get_all(name), name)?.ok_or(VerifyError::MissingHeader(name))?;
    match std::str::from_utf8(value.as_bytes()) {
        Ok("") => Err(VerifyError::MissingHeader(name)),
        Ok(v) => Ok(v),
        Err(_) => Err(VerifyError::MalformedHeader(name)),
    }
}

/// The signature header.
///
/// # Errors
/// [`VerifyError::MissingSignature`] when absent or empty, else as [`header`].
pub(crate) fn signature(parts: &Parts, name: impl Name) -> Result<&str, VerifyError> {
    match header(parts, name)? {
        // Visible ASCII (`single` checked it): ASCII trimming is `trim`.
        Some(v) if !v.trim_ascii().is_empty() => Ok(v),
        _ => Err(VerifyError::MissingSignature(name.label())),
    }
}

/// The pieces of `text` between occurrences of the ASCII byte `sep`, as
/// `str::split` gives them (empty pieces included), found with `memchr`.
/// Every cut falls on a character boundary: `sep` is ASCII.
pub(crate) fn split_ascii(text: &str, sep: u8) -> impl Iterator<Item = &str> {
    debug_assert!(sep.is_ascii());
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let now = rest?;
        match memchr::memchr(sep, now.as_bytes()) {
            Some(i) => {
                rest = now.get(i + 1..);
                now.get(..i)
            }
            None => rest.take(),
        }
    })
}

/// The `key=value` items of a header such as Stripe's
/// `t=1700000000,v1=5257a8...`, split on `sep` and then on the first `=`;
/// an item without `=` is skipped. Split as bytes: `sep` and `=` are ASCII,
/// so every cut falls on a character boundary.
pub(crate) fn pairs(header: &str, sep: u8) -> impl Iterator<Item = (&str, &str)> {
    split_ascii(header, sep).filter_map(|item| {
        let eq = item.bytes().position(|b| b == b'=')?;
        Some((item.get(..eq)?, item.get(eq + 1..)?))
    })
}

/// The candidate in `value` after `prefix` (`sha256=`); none when the
/// prefix is absent (a signature without it cannot match).
pub(crate) fn prefixed(value: &str, prefix: &str, encoding: Encoding) -> Candidates {
    match value.strip_prefix(prefix) {
        Some(sig) => Candidates::one(sig.as_bytes(), encoding),
        None => Candidates::new(),
    }
}

/// Parses a Unix timestamp written as plain ASCII digits (no sign, no
/// spaces, at most 18 digits so that milliseconds cannot overflow).
///
/// # Errors
/// [`VerifyError::MalformedHeader`] naming `what`.
pub(crate) fn parse_unix(text: &str, what: &'static str) -> Result<i64, VerifyError> {
    if text.is_empty() || text.len() > 18 {
        return Err(VerifyError::MalformedHeader(what));
    }
    // One pass: 18 digits cannot overflow an i64.
    text.bytes()
        .try_fold(0i64, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
        })
        .ok_or(VerifyError::MalformedHeader(what))
}

/// The fields of an `application/x-www-form-urlencoded` body, decoded
/// (`+` is a space, `%2B` is `+`), in the order sent.
///
/// # Errors
/// [`VerifyError::MalformedBody`] when the body is not UTF-8 or does not
/// decode.
pub(crate) fn form_fields(body: &[u8]) -> Result<Vec<(String, String)>, VerifyError> {
    if std::str::from_utf8(body).is_err() {
        return Err(VerifyError::MalformedBody("form body is not UTF-8"));
    }
    serde_urlencoded::from_bytes(body).map_err(|_| VerifyError::MalformedBody("form body"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decoding_is_lowercase_only_and_bounded() {
        assert_eq!(
            Sig::decode(b"0aff", Encoding::Hex).unwrap().as_bytes(),
            &[10, 255]
        );
        assert!(Sig::decode(b"0AFF", Encoding::Hex).is_none());
        assert!(Sig::decode(b"0af", Encoding::Hex).is_none());
        assert!(Sig::decode(&[b'a'; 130], Encoding::Hex).is_none());
        assert!(Sig::decode(b"zz", Encoding::Hex).is_none());
        // The bytes either side of each accepted range.
        for bad in [b"0/", b"0:", b"0`", b"0g", b"0@", b"0G", b"0\xff", b"0\0"] {
            assert!(Sig::decode(bad, Encoding::Hex).is_none(), "{bad:?}");
        }
        assert!(Sig::decode(b"09af", Encoding::Hex).is_some());
    }

    /// `pairs` answers as `split(sep)` then `split_once('=')` did, on the
    /// edges: empty items, no `=`, several `=`, a separator at either end,
    /// non-ASCII text.
    #[test]
    fn pairs_split_as_str_split_did() {
        let cases = [
            "",
            ",",
            "t=1,v1=ab",
            ",t=1,,v1=ab,",
            "t,v1=ab",
            "t=,=x,==,a=b=c",
            "t=1;v1=ab",
            "é=ü,ß=,x=é=1",
            "no separators here",
            "t=1 , v1 = ab",
        ];
        for sep in [',', ';'] {
            for case in cases {
                let old: Vec<_> = case.split(sep).filter_map(|i| i.split_once('=')).collect();
                let new: Vec<_> = pairs(case, sep as u8).collect();
                assert_eq!(new, old, "{case:?} split on {sep:?}");
            }
        }
    }

    /// `split_ascii` answers as `str::split` on the same edges, and on
    /// runs of separators.
    #[test]
    fn split_ascii_splits_as_str_split_does() {
        let cases = [
            "",
            " ",
            "  ",
            "v1,abc",
            "v1,abc v1,def",
            " v1,abc  v1a,def ",
            "é ü  ß",
            "no-separator",
        ];
        for sep in [' ', ',', ';'] {
            for case in cases {
                let old: Vec<_> = case.split(sep).collect();
                let new: Vec<_> = split_ascii(case, sep as u8).collect();
                assert_eq!(new, old, "{case:?} split on {sep:?}");
            }
        }
    }

    #[test]
    fn base64_decoding_rejects_garbage_and_overlong() {
        assert_eq!(
            Sig::decode(b"AAE=", Encoding::Base64).unwrap().as_bytes(),
            &[0, 1]
        );
        assert!(Sig::decode(b"AAE", Encoding::Base64).is_none());
        assert!(Sig::decode(b"A*E=", Encoding::Base64).is_none());
        assert!(Sig::decode(&[b'A'; 92], Encoding::Base64).is_none());
        // 66 bytes fit the scratch buffer but not a signature
        let long = STANDARD.encode([7u8; 66]);
        assert!(Sig::decode(long.as_bytes(), Encoding::Base64).is_none());
    }

    #[test]
    fn timestamps_must_be_plain_digits() {
        assert_eq!(parse_unix("1614265330", "t"), Ok(1_614_265_330));
        assert_eq!(parse_unix("007", "t"), Ok(7));
        assert_eq!(
            parse_unix("999999999999999999", "t"),
            Ok(999_999_999_999_999_999),
            "18 digits, the most allowed"
        );
        assert!(parse_unix("1000000000000000000", "t").is_err(), "19 digits");
        for bad in [
            "",
            "+1",
            " 1",
            "1 ",
            "-1",
            "1.5",
            "18446744073709551615",
            "0x10",
        ] {
            assert!(parse_unix(bad, "t").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_match_reports_the_label_and_retiring_mark_of_its_key() {
        let mut keys = KeySet::new(Algorithm::Sha256, &Secret::text("new").unwrap());
        keys.add(&Secret::text("old").unwrap().with_label("2025").retiring());
        let now = SystemTime::now();
        let sig = |k: &str| {
            KeySet::new(Algorithm::Sha256, &Secret::text(k).unwrap())
                .sign(now, &[b"body"])
                .unwrap()
        };
        let mut c = Candidates::new();
        c.push(sig("old"));
        let tag = keys.verify(now, &[b"body"], &c).unwrap().key();
        assert_eq!((tag.label.as_deref(), tag.retiring), (Some("2025"), true));
        let mut c = Candidates::new();
        c.push(sig("new"));
        let tag = keys.verify(now, &[b"body"], &c).unwrap().key();
        assert_eq!((tag.label.as_deref(), tag.retiring), (None, false));
    }

    #[test]
    fn signatures_compare_by_length_and_every_byte() {
        for len in [20usize, 32, 64, 7] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let a = Sig::from_slice(&bytes).expect("fits");
            assert!(a.ct_eq(&a), "{len} bytes equal themselves");
            for at in [0, len / 2, len - 1] {
                let mut other = bytes.clone();
                other[at] ^= 0x80;
                let b = Sig::from_slice(&other).expect("fits");
                assert!(!a.ct_eq(&b), "{len} bytes, differing at {at}");
            }
            let shorter = Sig::from_slice(&bytes[..len - 1]).expect("fits");
            assert!(!a.ct_eq(&shorter) && !shorter.ct_eq(&a), "lengths differ");
        }
    }

    #[test]
    fn candidates_keep_at_most_eight() {
        let mut c = Candidates::new();
        for _ in 0..20 {
            c.push_encoded(b"00", Encoding::Hex);
        }
        assert_eq!(c.iter().count(), Candidates::MAX);
    }
}
