//! Reading an OFREP request body and mapping its evaluation context to the client context
//! document the core evaluates.
//!
//! OpenFeature contexts are flat: a `targetingKey` and any attributes. They map as follows:
//!
//! | posted attribute | becomes |
//! |---|---|
//! | `targetingKey` (string; `""` and `null` count as absent) | `userId`: Normandy sampling and branch choice, CloudBees `rox.distinct_id` |
//! | `userId`, `appName`, `appId`, `version`, `buildId`, `channel`, `locale`, `country`, `os`, `platform`, `distribution`, `isFirstRun` | the document key of that name, **and** a CloudBees property of that name |
//! | `prefs`, `builtinDefaults`, `telemetry`, `addons`, `experiments`, `studies`, `rollouts`, `randomValues` | the document key of that name only |
//! | `properties` (object) | CloudBees properties, winning over attributes of the same name |
//! | anything else, `now` included | a CloudBees property of that name |
//!
//! `targetingKey` wins over `userId`. `null` for a document key means absent. A document
//! key with a value of the wrong type (`"version": 3`) is `INVALID_CONTEXT`. `now` is not
//! read as the evaluation time: the server's clock decides, so no client can look into the
//! future of a schedule.

use flightdeck_core::context::ClientContext;
use serde_json::{Map, Value};

use super::response::ErrorCode;

/// Document keys whose value is a scalar a CloudBees target group may also test by name.
const SCALAR_KEYS: [&str; 12] = [
    "userId",
    "appName",
    "appId",
    "version",
    "buildId",
    "channel",
    "locale",
    "country",
    "os",
    "platform",
    "distribution",
    "isFirstRun",
];

/// Document keys with structured values, never copied into properties.
const STRUCTURED_KEYS: [&str; 8] = [
    "prefs",
    "builtinDefaults",
    "telemetry",
    "addons",
    "experiments",
    "studies",
    "rollouts",
    "randomValues",
];

/// The attribute OpenFeature names the subject of an evaluation with.
const TARGETING_KEY: &str = "targetingKey";

/// A request whose body or context cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{details}")]
pub struct RequestError {
    /// `PARSE_ERROR` (the body) or `INVALID_CONTEXT` (the context).
    pub code: ErrorCode,
    /// What is wrong.
    pub details: String,
}

impl RequestError {
    fn parse(details: String) -> RequestError {
        RequestError {
            code: ErrorCode::ParseError,
            details,
        }
    }

    fn context(details: String) -> RequestError {
        RequestError {
            code: ErrorCode::InvalidContext,
            details,
        }
    }
}

/// An evaluation request: the context as posted (for the bulk ETag) and as the core reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationRequest {
    /// The posted `context` object (empty when absent).
    pub posted: Map<String, Value>,
    /// The client context built from it.
    pub context: ClientContext,
}

/// Reads a request body `{"context": {...}}`. An empty body, or one without `context`, is an
/// empty context. Not JSON, or JSON that is not an object: `PARSE_ERROR`. A `context` that
/// is not an object, or does not map (see the module documentation): `INVALID_CONTEXT`.
pub fn parse_request(body: &[u8]) -> Result<EvaluationRequest, RequestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(EvaluationRequest {
            posted: Map::new(),
            context: ClientContext::default(),
        });
    }
    let json: Value = serde_json::from_slice(body)
        .map_err(|err| RequestError::parse(format!("the body is not JSON: {err}")))?;
    let Value::Object(mut request) = json else {
        return Err(RequestError::parse(
            "the body is not a JSON object `{\"context\": {...}}`".to_owned(),
        ));
    };
    let posted = match request.remove("context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(context)) => context,
        Some(_) => {
            return Err(RequestError::context(
                "`context` is not an object".to_owned(),
            ));
        }
    };
    let context = client_context(&posted)?;
    Ok(EvaluationRequest { posted, context })
}

/// Maps a posted OFREP context to a client context document (see the module documentation).
pub fn client_context(posted: &Map<String, Value>) -> Result<ClientContext, RequestError> {
    let mut document = Map::new();
    let mut properties = Map::new();
    let mut explicit_properties = None;
    let mut targeting_key = None;
    for (name, value) in posted {
        let name = name.as_str();
        if name == TARGETING_KEY {
            targeting_key = match value {
                Value::Null => None,
                Value::String(key) if key.is_empty() => None,
                Value::String(key) => Some(key.clone()),
                _ => {
                    return Err(RequestError::context(
                        "`targetingKey` is not a string".to_owned(),
                    ));
                }
            };
        } else if name == "properties" {
            match value {
                Value::Null => {}
                Value::Object(map) => explicit_properties = Some(map),
                _ => {
                    return Err(RequestError::context(
                        "`properties` is not an object".to_owned(),
                    ));
                }
            }
        } else if SCALAR_KEYS.contains(&name) {
            if !value.is_null() {
                check_document_key(name, value)?;
                document.insert(name.to_owned(), value.clone());
            }
            properties.insert(name.to_owned(), value.clone());
        } else if STRUCTURED_KEYS.contains(&name) {
            if !value.is_null() {
                check_document_key(name, value)?;
                document.insert(name.to_owned(), value.clone());
            }
        } else {
            properties.insert(name.to_owned(), value.clone());
        }
    }
    if let Some(explicit) = explicit_properties {
        for (name, value) in explicit {
            properties.insert(name.clone(), value.clone());
        }
    }
    if let Some(key) = targeting_key {
        document.insert("userId".to_owned(), Value::String(key));
    }
    document.insert("properties".to_owned(), Value::Object(properties));
    serde_json::from_value(Value::Object(document))
        .map_err(|err| RequestError::context(format!("the context cannot be read: {err}")))
}

/// Checks one document key on its own, so that the error names it.
fn check_document_key(name: &str, value: &Value) -> Result<(), RequestError> {
    let mut single = Map::new();
    single.insert(name.to_owned(), value.clone());
    serde_json::from_value::<ClientContext>(Value::Object(single))
        .map(|_| ())
        .map_err(|err| RequestError::context(format!("`{name}`: {err}")))
}

/// The canonical text of a posted context: object keys sorted at every level, no spaces.
/// Two postings of the same context in another key order give the same text.
pub fn canonical_text(posted: &Map<String, Value>) -> String {
    let mut out = String::new();
    write_object(posted, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        // Scalars and strings serialise infallibly; `null` is the unreachable fallback.
        scalar => out.push_str(&serde_json::to_string(scalar).unwrap_or_default()),
    }
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (name, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(name).unwrap_or_default());
        out.push(':');
        write_value(value, out);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn posted(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn targeting_key_is_the_user_id_and_attributes_map_to_document_keys_and_properties() {
        let context = client_context(&posted(json!({
            "targetingKey": "user-1",
            "userId": "ignored",
            "channel": "beta",
            "version": "128.0",
            "isFirstRun": true,
            "plan": "gold",
            "now": "2030-01-01T00:00:00Z",
            "prefs": {"a.b": {"user": 3}},
            "properties": {"plan": "beta", "email": "x@example.com"}
        })))
        .expect("maps");
        assert_eq!(context.user_id.as_deref(), Some("user-1"));
        assert_eq!(context.channel.as_deref(), Some("beta"));
        assert_eq!(context.version.as_deref(), Some("128.0"));
        assert_eq!(context.is_first_run, Some(true));
        assert_eq!(context.now, None, "the server's clock decides the time");
        assert!(context.prefs.contains_key("a.b"));
        assert_eq!(context.properties.get("plan"), Some(&json!("beta")));
        assert_eq!(
            context.properties.get("email"),
            Some(&json!("x@example.com"))
        );
        assert_eq!(context.properties.get("channel"), Some(&json!("beta")));
        assert_eq!(
            context.properties.get("now"),
            Some(&json!("2030-01-01T00:00:00Z"))
        );
        assert_eq!(context.properties.get("userId"), Some(&json!("ignored")));
        assert!(!context.properties.contains_key("targetingKey"));
        assert!(!context.properties.contains_key("prefs"));
    }

    #[test]
    fn empty_or_null_targeting_key_is_absent_and_user_id_stays() {
        let context = client_context(&posted(json!({"targetingKey": ""}))).expect("maps");
        assert_eq!(context.user_id, None);
        let context =
            client_context(&posted(json!({"targetingKey": null, "userId": "u"}))).expect("maps");
        assert_eq!(context.user_id.as_deref(), Some("u"));
    }

    #[test]
    fn wrong_types_are_invalid_context_naming_the_key() {
        for (context, key) in [
            (json!({"targetingKey": 5}), "targetingKey"),
            (json!({"version": 3}), "version"),
            (json!({"prefs": [1]}), "prefs"),
            (json!({"properties": "x"}), "properties"),
        ] {
            let err = client_context(&posted(context)).expect_err("refused");
            assert_eq!(err.code, ErrorCode::InvalidContext);
            assert!(err.details.contains(key), "{}", err.details);
        }
    }

    #[test]
    fn request_bodies() {
        assert_eq!(
            parse_request(b"").expect("empty").context,
            ClientContext::default()
        );
        assert_eq!(
            parse_request(b"{}").expect("no context").context,
            ClientContext::default()
        );
        assert_eq!(
            parse_request(br#"{"context": null}"#)
                .expect("null")
                .posted
                .len(),
            0
        );
        for bad in [&b"{"[..], b"nope", b"[1]", b"\"x\"", b"\xff\xfe"] {
            assert_eq!(
                parse_request(bad).expect_err("refused").code,
                ErrorCode::ParseError
            );
        }
        assert_eq!(
            parse_request(br#"{"context": [1]}"#)
                .expect_err("refused")
                .code,
            ErrorCode::InvalidContext
        );
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            parse_request(deep.as_bytes()).expect_err("refused").code,
            ErrorCode::ParseError
        );
    }

    #[test]
    fn canonical_text_sorts_keys_at_every_level() {
        let a = posted(json!({"b": 1, "a": {"y": [1, {"q": 2, "p": 1}], "x": "s"}}));
        let b = posted(json!({"a": {"x": "s", "y": [1, {"p": 1, "q": 2}]}, "b": 1}));
        assert_eq!(canonical_text(&a), canonical_text(&b));
        assert_eq!(
            canonical_text(&a),
            r#"{"a":{"x":"s","y":[1,{"p":1,"q":2}]},"b":1}"#
        );
    }
}
