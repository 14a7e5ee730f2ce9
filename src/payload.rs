//! Parsing the verified body into the handler's type, without any
//! framework: the axum extractor, the actix adapter and plain tower handlers
//! share these rules.
//!
//! | body | error | status |
//! |---|---|---|
//! | not JSON at all (syntax, truncated, not UTF-8) | [`PayloadError::Syntax`] | 400 |
//! | JSON, but not the shape of `T` | [`PayloadError::Shape`] | 422 |
//! | form-encoded, not the shape of `T` | [`PayloadError::Shape`] | 422 |
//! | JSON in a form's `payload=` field ([`form_json`]): field absent or repeated | [`PayloadError::Shape`] | 422 |
//! | JSON in a form's `payload=` field: the JSON is invalid / the wrong shape | as for JSON | 400 / 422 |
//!
//! ```
//! use serde::Deserialize;
//! use tower_webhook::payload::{parse, PayloadError};
//!
//! #[derive(Deserialize)]
//! struct Event { id: String }
//!
//! let ev: Event = parse(None, br#"{"id":"evt_1"}"#)?;
//! assert_eq!(ev.id, "evt_1");
//! assert!(matches!(parse::<Event>(None, b"{\"id\":"), Err(PayloadError::Syntax(_))));
//! assert!(matches!(parse::<Event>(None, b"{\"id\":1}"), Err(PayloadError::Shape(_))));
//! # Ok::<(), PayloadError>(())
//! ```

use http::StatusCode;
use serde::de::DeserializeOwned;

/// The body could not become the handler's type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The body is not valid JSON (or form data).
    #[error("payload is not valid: {0}")]
    Syntax(String),
    /// The body is valid but not the shape the handler asked for.
    #[error("payload has the wrong shape: {0}")]
    Shape(String),
}

impl PayloadError {
    /// 400 for syntax, 422 for shape.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Syntax(_) => StatusCode::BAD_REQUEST,
            Self::Shape(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// The short code the client sees.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Syntax(_) => "invalid_payload",
            Self::Shape(_) => "unexpected_payload",
        }
    }
}

/// Whether `content_type` is `application/x-www-form-urlencoded`.
pub fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        media_essence(ct.as_bytes()).eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
    })
}

/// The media type of a `Content-Type` value without its parameters and
/// the spaces around it: `application/json` of `application/json;
/// charset=utf-8`. Compared case-insensitively by its users.
pub(crate) fn media_essence(value: &[u8]) -> &[u8] {
    let end = memchr::memchr(b';', value).unwrap_or(value.len());
    value.get(..end).unwrap_or(value).trim_ascii()
}

/// Parses JSON into `T`.
///
/// The whole body must be UTF-8 (RFC 8259), including the fields `T` does
/// not read: serde_json alone skips those without checking them.
///
/// # Errors
/// [`PayloadError::Syntax`] or [`PayloadError::Shape`].
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, PayloadError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| PayloadError::Syntax(format!("body is not UTF-8: {e}")))?;
    serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => PayloadError::Shape(e.to_string()),
        // A type may stop reading early (a struct filled from an array with
        // more elements): serde_json then calls the rest a syntax error.
        // JSON that parses (within serde_json's depth limit) is never a
        // syntax error: it is the wrong shape.
        serde_json::error::Category::Syntax
            if serde_json::from_str::<serde_json::Value>(text).is_ok() =>
        {
            PayloadError::Shape(e.to_string())
        }
        serde_json::error::Category::Io
        | serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof => PayloadError::Syntax(e.to_string()),
    })
}

/// Parses `application/x-www-form-urlencoded` into `T`.
///
/// # Errors
/// [`PayloadError::Shape`].
pub fn form<T: DeserializeOwned>(body: &[u8]) -> Result<T, PayloadError> {
    serde_urlencoded::from_bytes(body).map_err(|e| PayloadError::Shape(e.to_string()))
}

/// Parses the body as form data when `content_type` says so, else as JSON.
///
/// # Errors
/// As [`json`] and [`form`].
pub fn parse<T: DeserializeOwned>(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<T, PayloadError> {
    if is_form(content_type) {
        form(body)
    } else {
        json(body)
    }
}

/// Parses the JSON held in the `payload` field of a form-encoded body, as
/// Slack interactivity, Papertrail and GitHub's form-encoded hooks send it.
///
/// ```
/// use serde::Deserialize;
/// use tower_webhook::payload::{form_json, PayloadError};
///
/// #[derive(Deserialize)]
/// struct Action { r#type: String }
///
/// let a: Action = form_json(b"payload=%7B%22type%22%3A%22block_actions%22%7D")?;
/// assert_eq!(a.r#type, "block_actions");
/// assert!(matches!(form_json::<Action>(b"text=hi"), Err(PayloadError::Shape(_))));
/// assert!(matches!(form_json::<Action>(b"payload=%7B"), Err(PayloadError::Syntax(_))));
/// # Ok::<(), PayloadError>(())
/// ```
///
/// # Errors
/// [`PayloadError::Shape`] when the field is absent or repeated; else as
/// [`json`] for the field's value.
pub fn form_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, PayloadError> {
    let pairs: Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> =
        serde_urlencoded::from_bytes(body).map_err(|e| PayloadError::Syntax(e.to_string()))?;
    let mut found = None;
    for (k, v) in pairs {
        if k == "payload" {
            if found.is_some() {
                return Err(PayloadError::Shape("`payload` field repeated".into()));
            }
            found = Some(v);
        }
    }
    let payload = found.ok_or_else(|| PayloadError::Shape("no `payload` field".into()))?;
    json(payload.as_bytes())
}

/// [`form_json`] when `content_type` is form-encoded, else the body as JSON
/// (GitHub sends either, per hook setting).
///
/// # Errors
/// As [`form_json`] and [`json`].
pub fn parse_form_json<T: DeserializeOwned>(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<T, PayloadError> {
    if is_form(content_type) {
        form_json(body)
    } else {
        json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Ev {
        id: u32,
    }

    /// `is_form` reads the media type as the content-type check does:
    /// without parameters, spaces or case.
    #[test]
    fn is_form_reads_the_essence_of_the_media_type() {
        for yes in [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=utf-8",
            " Application/X-WWW-Form-Urlencoded ;",
        ] {
            assert!(is_form(Some(yes)), "{yes:?}");
        }
        for no in [
            "application/json",
            "application/x-www-form-urlencoded-x",
            "; application/x-www-form-urlencoded",
            "",
        ] {
            assert!(!is_form(Some(no)), "{no:?}");
        }
        assert!(!is_form(None));
    }

    #[test]
    fn form_json_reads_the_payload_field_among_others() {
        let got: Ev = form_json(b"token=x&payload=%7B%22id%22%3A7%7D&other=1").unwrap();
        assert_eq!(got, Ev { id: 7 });
        let plus: Ev = form_json(b"payload={\"id\":+7}").unwrap();
        assert_eq!(plus, Ev { id: 7 });
    }

    #[test]
    fn form_json_statuses_follow_the_json_rules() {
        let status = |b: &[u8]| form_json::<Ev>(b).unwrap_err().status();
        assert_eq!(status(b"payload=%7B%22id%22"), StatusCode::BAD_REQUEST);
        assert_eq!(status(b"payload="), StatusCode::BAD_REQUEST);
        assert_eq!(
            status(b"payload=%7B%22id%22%3A%22x%22%7D"),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(status(b"text=hello"), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(status(b""), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            status(b"payload=1&payload=2"),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(status(b"payload=%FF%FE"), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn parse_form_json_takes_plain_json_too() {
        let form: Ev = parse_form_json(
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"payload=%7B%22id%22%3A1%7D",
        )
        .unwrap();
        let json: Ev = parse_form_json(Some("application/json"), br#"{"id":1}"#).unwrap();
        assert_eq!(form, json);
    }

    #[derive(Debug, serde::Deserialize)]
    struct Event {
        id: String,
    }

    #[test]
    fn valid_json_the_type_stops_reading_early_is_a_shape_error() {
        // found by the `payload` fuzz target: a struct filled from an array
        // with extra elements made serde_json report "trailing characters"
        let err = json::<Event>(br#"["evt_1","extra"]"#).unwrap_err();
        assert!(matches!(err, PayloadError::Shape(_)), "{err:?}");
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let err = json::<Event>(br#"["evt_1","extra""#).unwrap_err();
        assert!(matches!(err, PayloadError::Syntax(_)), "{err:?}");
    }

    #[test]
    fn rejects_invalid_utf8_in_a_field_the_type_ignores() {
        // found by the `payload` fuzz target: serde_json skips ignored
        // strings without checking their bytes
        let body = b"{\"note\":\"caf\xff\",\"id\":\"evt_1\"}";
        let err = json::<Event>(body).unwrap_err();
        assert!(matches!(err, PayloadError::Syntax(_)), "{err:?}");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let ok = json::<Event>(br#"{"note":"caf\u00e9","id":"evt_1"}"#).unwrap();
        assert_eq!(ok.id, "evt_1");
    }
}
