//! Twilio: `X-Twilio-Signature` over the request URL and the sorted POST
//! parameters (three variants).

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use http::request::Parts;
use sha2::Digest as _;
use subtle::ConstantTimeEq;

use super::kit::{self, Algorithm, Candidates, Encoding, KeySet};
use crate::client::{PublicUrl, RequestUrl};
use crate::secret::Secret;
use crate::verify::{Verified, Verifier, VerifyError};

const SIGNATURE: &str = "x-twilio-signature";
const SETTINGS: &str = "x-twilio-webhooks-signature-settings";
const IDEMPOTENCY: &str = "i-twilio-idempotency-token";

/// [Twilio](https://www.twilio.com/docs/usage/webhooks/webhooks-security):
/// base64 HMAC in `X-Twilio-Signature` over the full URL Twilio requested,
/// followed by every POST parameter sorted by name (byte order), each as
/// name immediately followed by its decoded value (repeated names: each
/// distinct value, sorted). All three of Twilio's variants:
///
/// * **Auth Token, HMAC-SHA1** (the default): [`Twilio::new`] with the
///   account's Auth Token; [`add_secret`](Twilio::add_secret) for the
///   secondary token during a rotation.
/// * **JSON bodies**: when the URL's query carries `bodySHA256`, only the
///   URL is signed and the body must hash (SHA-256, lowercase hex) to that
///   value.
/// * **SharedKey, HMAC-SHA256**: when `X-Twilio-Webhooks-Signature-Settings`
///   names `algorithm=HMAC_SHA256`, the signature is checked with the
///   SharedKey secrets given to [`Twilio::with_shared_key`] /
///   [`add_shared_key`](Twilio::add_shared_key). Any other algorithm is
///   refused (fail closed).
///
/// Twilio's back end is inconsistent about default ports, so, as its
/// SDKs, the URL is tried without a port and with one (`:443`/`:80` added
/// when absent). The URL comes from a [`PublicUrl`] (see its `# Deployment`
/// section: behind a proxy, configure it).
///
/// The form scheme joins names and values with no separator, so the same
/// characters split into other fields carry the same signature (`a=bc` and
/// `ab=c` both sign `abc`): a verified form proves its characters, not
/// where one field ends. Read the parameters you expect; the JSON variant
/// (`bodySHA256`) has no such gap.
///
/// No timestamp is signed: a captured request can be replayed, and is then
/// a duplicate: the layer de-duplicates on the signature (a hash of it).
/// Event id: `I-Twilio-Idempotency-Token` when sent. It is **not signed**
/// (anyone holding a captured request can change it), so it is only shown
/// ([`Verified::id_signed`](crate::Verified::id_signed) is false), never
/// claimed. Two requests with the same URL and parameters are one event.
///
/// ```
/// use std::time::SystemTime;
/// use tower_webhook::{client::PublicUrl, providers::Twilio, Secret, Verifier};
///
/// let twilio = Twilio::new(Secret::text("12345")?)
///     .public_url(PublicUrl::base("https://mycompany.com")?);
/// let req = http::Request::post("/myapp.php?foo=1&bar=2")
///     .header("content-type", "application/x-www-form-urlencoded")
///     .header("x-twilio-signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
///     .body(())?;
/// let body = b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309";
/// twilio.verify(&req.into_parts().0, body, SystemTime::now())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Twilio {
    keys: KeySet,
    shared: KeySet,
    url: PublicUrl,
}

hmac_provider!(Twilio, Algorithm::Sha1);

impl Twilio {
    fn from_keys(keys: KeySet) -> Self {
        Self {
            keys,
            shared: KeySet::empty(Algorithm::Sha256),
            url: PublicUrl::default(),
        }
    }

    /// A verifier that holds only a SharedKey secret (Webhooks Rules,
    /// HMAC-SHA256); deliveries signed with an Auth Token are refused.
    pub fn with_shared_key(secret: Secret) -> Self {
        Self::from_keys(KeySet::empty(Algorithm::Sha1)).add_shared_key(secret)
    }

    /// Accepts HMAC-SHA256 signatures made with this SharedKey secret.
    pub fn add_shared_key(mut self, secret: Secret) -> Self {
        self.shared.add(&secret);
        self
    }

    /// How the URL Twilio requested is rebuilt (default: from the request,
    /// trusting no proxy).
    pub fn public_url(mut self, url: PublicUrl) -> Self {
        self.url = url;
        self
    }
}

/// `name value` pairs sorted by name then value, duplicates collapsed, as
/// Twilio's SDKs do.
fn sorted_params(fields: Vec<(String, String)>) -> BTreeMap<String, BTreeSet<String>> {
    let mut sorted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (k, v) in fields {
        sorted.entry(k).or_default().insert(v);
    }
    sorted
}

/// The value of `bodySHA256` in the URL's query, if present.
fn body_sha256(url: &RequestUrl) -> Result<Option<String>, VerifyError> {
    let Some(query) = url.query() else {
        return Ok(None);
    };
    let fields: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|_| VerifyError::MalformedHeader("url query"))?;
    Ok(fields
        .into_iter()
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v))
}

impl Verifier for Twilio {
    fn provider(&self) -> &'static str {
        "twilio"
    }

    fn content_types(&self) -> &[&'static str] {
        &["application/x-www-form-urlencoded", "application/json"]
    }

    fn verify(&self, parts: &Parts, body: &[u8], now: SystemTime) -> Result<Verified, VerifyError> {
        let sig = kit::signature(parts, SIGNATURE)?;
        let keys = match kit::header(parts, SETTINGS)? {
            Some(settings) => {
                // Items as `kit::pairs` splits them, with the spaces a
                // sender may put around them trimmed.
                let algorithm = kit::pairs(settings, b',')
                    .map(|(k, v)| (k.trim_start(), v.trim_end()))
                    .find(|(k, _)| *k == "algorithm")
                    .map(|(_, v)| v);
                match algorithm {
                    None => &self.keys,
                    Some("HMAC_SHA256") => &self.shared,
                    // An algorithm we do not know: fail closed.
                    Some(_) => return Err(VerifyError::SignatureMismatch),
                }
            }
            None => &self.keys,
        };
        let url = self.url.resolve_parts(parts)?;

        let params = match body_sha256(&url)? {
            Some(expected) => {
                let actual = hex::encode(sha2::Sha256::digest(body));
                if !bool::from(actual.as_bytes().ct_eq(expected.as_bytes())) {
                    return Err(VerifyError::SignatureMismatch);
                }
                BTreeMap::new()
            }
            None if body.is_empty() => BTreeMap::new(),
            None => sorted_params(kit::form_fields(body)?),
        };

        let candidates = Candidates::one(sig.trim().as_bytes(), Encoding::Base64);
        let mut result = Err(VerifyError::SignatureMismatch);
        for variant in url.port_variants() {
            let mut signed: Vec<&[u8]> = vec![variant.as_bytes()];
            for (name, values) in &params {
                for value in values {
                    signed.push(name.as_bytes());
                    signed.push(value.as_bytes());
                }
            }
            result = keys.verify(now, &signed, &candidates);
            if result.is_ok() {
                break;
            }
        }
        let m = result?;

        let mut v = Verified::new("twilio")
            .with_key(m.key())
            .with_content_digest(m.mac.digest32());
        if let Some(id) = kit::header(parts, IDEMPOTENCY)?.filter(|s| !s.is_empty()) {
            v = v.with_event_id(id, false);
        }
        Ok(v)
    }
}

/// Signs like Twilio (for tests): HMAC over `url` and the sorted form
/// fields of `body` (or only `url` when it carries `bodySHA256`).
#[cfg(any(test, feature = "test-util"))]
pub(crate) fn sign(alg: Algorithm, secret: &Secret, url: &str, body: &[u8]) -> String {
    let mut signed: Vec<u8> = url.as_bytes().to_vec();
    if !url.contains("bodySHA256=") {
        let fields = kit::form_fields(body).unwrap_or_default();
        for (name, values) in sorted_params(fields) {
            for value in values {
                signed.extend_from_slice(name.as_bytes());
                signed.extend_from_slice(value.as_bytes());
            }
        }
    }
    KeySet::new(alg, secret)
        .sign(SystemTime::UNIX_EPOCH, &[&signed])
        .map(|s| s.encode(Encoding::Base64))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::client::{ClientAddr, TrustedProxies};

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const BODY: &[u8] = b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309";

    fn secret(s: &str) -> Secret {
        Secret::text(s).unwrap()
    }

    fn request(path: &str, headers: &[(&str, &str)], peer: Option<&str>) -> Parts {
        let mut b = http::Request::post(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut req = b.body(()).unwrap();
        if let Some(p) = peer {
            req.extensions_mut()
                .insert(ClientAddr(p.parse::<SocketAddr>().unwrap()));
        }
        req.into_parts().0
    }

    fn based() -> Twilio {
        Twilio::new(secret("12345")).public_url(PublicUrl::base("https://mycompany.com").unwrap())
    }

    #[test]
    fn accepts_the_sdk_vector_and_rejects_a_changed_parameter() {
        let sig = sign(Algorithm::Sha1, &secret("12345"), URL, BODY);
        assert_eq!(sig, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        let parts = request("/myapp.php?foo=1&bar=2", &[(SIGNATURE, &sig)], None);
        assert!(based().verify(&parts, BODY, SystemTime::now()).is_ok());
        let tampered = String::from_utf8(BODY.to_vec())
            .unwrap()
            .replace("1234", "1235");
        assert_eq!(
            based()
                .verify(&parts, tampered.as_bytes(), SystemTime::now())
                .unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn parameter_order_in_the_body_does_not_matter_but_values_do() {
        let sig = sign(Algorithm::Sha1, &secret("12345"), URL, b"b=2&a=1");
        let parts = request("/myapp.php?foo=1&bar=2", &[(SIGNATURE, &sig)], None);
        assert!(
            based()
                .verify(&parts, b"a=1&b=2", SystemTime::now())
                .is_ok()
        );
        assert!(
            based()
                .verify(&parts, b"a=1&b=2&c=3", SystemTime::now())
                .is_err()
        );
        assert!(based().verify(&parts, b"a=1", SystemTime::now()).is_err());
    }

    #[test]
    fn query_string_is_part_of_the_signed_url() {
        let sig = sign(Algorithm::Sha1, &secret("12345"), URL, BODY);
        let parts = request("/myapp.php?foo=1&bar=3", &[(SIGNATURE, &sig)], None);
        assert!(based().verify(&parts, BODY, SystemTime::now()).is_err());
        let parts = request("/myapp.php?bar=2&foo=1", &[(SIGNATURE, &sig)], None);
        assert!(based().verify(&parts, BODY, SystemTime::now()).is_err());
    }

    #[test]
    fn body_hash_mode_checks_the_body_against_the_url() {
        let body = br#"{"a":1}"#;
        let hash = hex::encode(sha2::Sha256::digest(body));
        let path = format!("/json?bodySHA256={hash}");
        let sig = sign(
            Algorithm::Sha1,
            &secret("12345"),
            &format!("https://mycompany.com{path}"),
            body,
        );
        let parts = request(&path, &[(SIGNATURE, &sig)], None);
        assert!(based().verify(&parts, body, SystemTime::now()).is_ok());
        assert_eq!(
            based()
                .verify(&parts, br#"{"a":2}"#, SystemTime::now())
                .unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn shared_key_is_used_only_when_the_settings_header_names_sha256() {
        let key = secret("KY6cR7xag3IEBugxnzXKjyKsfzSiTWH+");
        let v = Twilio::with_shared_key(key.clone())
            .public_url(PublicUrl::base("https://mycompany.com").unwrap());
        let sig256 = sign(Algorithm::Sha256, &key, URL, BODY);
        let settings = "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256";
        let ok = request(
            "/myapp.php?foo=1&bar=2",
            &[(SIGNATURE, &sig256), (SETTINGS, settings)],
            None,
        );
        assert!(v.verify(&ok, BODY, SystemTime::now()).is_ok());
        // a space after the comma is the sender's, not part of the name
        let spaced = request(
            "/myapp.php?foo=1&bar=2",
            &[
                (SIGNATURE, &sig256),
                (SETTINGS, "key=webhooks_sharedkey_1, algorithm=HMAC_SHA256"),
            ],
            None,
        );
        assert!(v.verify(&spaced, BODY, SystemTime::now()).is_ok());
        // same MAC without the settings header: the Auth Token path, which holds no key
        let legacy = request("/myapp.php?foo=1&bar=2", &[(SIGNATURE, &sig256)], None);
        assert_eq!(
            v.verify(&legacy, BODY, SystemTime::now()).unwrap_err(),
            VerifyError::NoActiveSecret
        );
        let unknown = request(
            "/myapp.php?foo=1&bar=2",
            &[
                (SIGNATURE, &sig256),
                (SETTINGS, "key=k,algorithm=HMAC_SHA512"),
            ],
            None,
        );
        assert!(v.verify(&unknown, BODY, SystemTime::now()).is_err());
    }

    #[test]
    fn port_variants_with_and_without_the_default_port_verify() {
        let with_port = sign(
            Algorithm::Sha1,
            &secret("12345"),
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            BODY,
        );
        let parts = request("/myapp.php?foo=1&bar=2", &[(SIGNATURE, &with_port)], None);
        assert!(based().verify(&parts, BODY, SystemTime::now()).is_ok());
        // another port is not a variant of this URL
        let other = sign(
            Algorithm::Sha1,
            &secret("12345"),
            "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
            BODY,
        );
        let parts = request("/myapp.php?foo=1&bar=2", &[(SIGNATURE, &other)], None);
        assert!(based().verify(&parts, BODY, SystemTime::now()).is_err());
    }

    #[test]
    fn forwarded_headers_are_believed_only_from_trusted_proxies() {
        let sig = sign(Algorithm::Sha1, &secret("12345"), URL, BODY);
        let headers = [
            (SIGNATURE, sig.as_str()),
            ("host", "internal:8080"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "mycompany.com"),
        ];
        let v = Twilio::new(secret("12345")).public_url(PublicUrl::from_request(
            TrustedProxies::new(["10.0.0.0/8"]).unwrap(),
        ));
        let via_proxy = request("/myapp.php?foo=1&bar=2", &headers, Some("10.1.1.1:5000"));
        assert!(v.verify(&via_proxy, BODY, SystemTime::now()).is_ok());
        let direct = request("/myapp.php?foo=1&bar=2", &headers, Some("203.0.113.9:5000"));
        assert_eq!(
            v.verify(&direct, BODY, SystemTime::now()).unwrap_err(),
            VerifyError::SignatureMismatch
        );
    }

    #[test]
    fn non_utf8_form_and_missing_signature_are_clean_errors() {
        let parts = request("/myapp.php", &[(SIGNATURE, "AAAA")], None);
        assert!(matches!(
            based().verify(&parts, b"a=\xff", SystemTime::now()),
            Err(VerifyError::MalformedBody(_))
        ));
        let parts = request("/myapp.php", &[], None);
        assert!(matches!(
            based().verify(&parts, BODY, SystemTime::now()),
            Err(VerifyError::MissingSignature(_))
        ));
    }
}
