//! A JSON document borrowed from the text it was read from.
//!
//! A recipe file is read once, validated and turned into the model; the JSON tree in between
//! lives only as long as that. `serde_json::Value` would copy every key and string out of the
//! text and hash every key into an `IndexMap`, which was most of the time spent reading a
//! large manifest. This tree borrows strings that have no escapes, keeps object members in a
//! vector (recipe objects have a handful of members, so a linear search beats hashing), and is
//! turned into `serde_json` values only for the parts the model keeps as JSON (unknown keys,
//! arguments of unsupported actions).
//!
//! It reads exactly what `serde_json::Value` reads, with the same numbers, and an object
//! with a repeated key keeps the key at its first position with the last value, as
//! `serde_json::Map` does.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use super::JsonMap;

/// A JSON value whose strings borrow from the text where they can.
#[derive(Debug, Clone)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(JsonObj<'a>),
}

/// A JSON object: its members in order, each key once.
#[derive(Debug, Clone, Default)]
pub(crate) struct JsonObj<'a> {
    entries: Vec<(Cow<'a, str>, Json<'a>)>,
    /// Whether a key was repeated in the text (its value then is not the one at its place).
    repeated: bool,
}

/// Objects up to this size are kept free of repeated keys by a linear search on insertion;
/// larger ones (never a recipe, but possible in hostile input) by one hashed pass at the end,
/// so reading stays linear.
const LINEAR_DEDUP: usize = 16;

impl<'a> JsonObj<'a> {
    /// The value of member `key`.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v)
    }

    /// Whether the object has member `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the object has no members.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a key was repeated in the text, so that a member's value may come from a later
    /// place than its key.
    pub fn has_repeated_keys(&self) -> bool {
        self.repeated
    }

    /// The members in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The object as a `serde_json` map.
    pub fn to_map(&self) -> JsonMap {
        let mut map = JsonMap::with_capacity(self.entries.len());
        for (key, value) in &self.entries {
            map.insert(key.as_ref().to_owned(), value.to_value());
        }
        map
    }

    /// Removes repeated keys from members read in order: the first place, the last value.
    fn dedup_hashed(members: Vec<(Cow<'a, str>, Json<'a>)>) -> JsonObj<'a> {
        let mut first: HashMap<Cow<'a, str>, usize> = HashMap::with_capacity(members.len());
        let mut entries: Vec<(Cow<'a, str>, Json<'a>)> = Vec::with_capacity(members.len());
        let mut repeated = false;
        for (key, value) in members {
            match first.get(&key).and_then(|&idx| entries.get_mut(idx)) {
                Some(slot) => {
                    slot.1 = value;
                    repeated = true;
                }
                None => {
                    first.insert(key.clone(), entries.len());
                    entries.push((key, value));
                }
            }
        }
        JsonObj { entries, repeated }
    }
}

impl<'a> Json<'a> {
    /// The string, if the value is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The object, if the value is one.
    pub fn as_object(&self) -> Option<&JsonObj<'a>> {
        match self {
            Json::Object(map) => Some(map),
            _ => None,
        }
    }

    /// Whether the value is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// Member `key` of an object (`None` for other values).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.as_object().and_then(|map| map.get(key))
    }

    /// The value as a `serde_json` value.
    pub fn to_value(&self) -> serde_json::Value {
        match self {
            Json::Null => serde_json::Value::Null,
            Json::Bool(b) => serde_json::Value::Bool(*b),
            Json::Number(n) => serde_json::Value::Number(n.clone()),
            Json::String(s) => serde_json::Value::String(s.as_ref().to_owned()),
            Json::Array(items) => {
                serde_json::Value::Array(items.iter().map(Json::to_value).collect())
            }
            Json::Object(map) => serde_json::Value::Object(map.to_map()),
        }
    }

    /// A `serde_json` value seen as a borrowed tree (for model parts kept as JSON).
    pub fn from_value(value: &'a serde_json::Value) -> Json<'a> {
        match value {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => Json::Number(n.clone()),
            serde_json::Value::String(s) => Json::String(Cow::Borrowed(s)),
            serde_json::Value::Array(items) => {
                Json::Array(items.iter().map(Json::from_value).collect())
            }
            serde_json::Value::Object(map) => Json::Object(JsonObj {
                entries: map
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Json::from_value(v)))
                    .collect(),
                repeated: false,
            }),
        }
    }
}

/// Equality as `serde_json::Value` has it: numbers by representation, objects regardless of
/// member order.
impl PartialEq for Json<'_> {
    fn eq(&self, other: &Json<'_>) -> bool {
        match (self, other) {
            (Json::Null, Json::Null) => true,
            (Json::Bool(a), Json::Bool(b)) => a == b,
            (Json::Number(a), Json::Number(b)) => a == b,
            (Json::String(a), Json::String(b)) => a == b,
            (Json::Array(a), Json::Array(b)) => a == b,
            (Json::Object(a), Json::Object(b)) => a == b,
            _ => false,
        }
    }
}

impl PartialEq for JsonObj<'_> {
    fn eq(&self, other: &JsonObj<'_>) -> bool {
        if self.len() != other.len() {
            return false;
        }
        if self.len() <= LINEAR_DEDUP {
            return self.iter().all(|(k, v)| other.get(k) == Some(v));
        }
        let index: HashMap<&str, &Json<'_>> = other.iter().collect();
        self.iter().all(|(k, v)| index.get(k) == Some(&v))
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Builds a [`Json`] the way `serde_json::Value`'s own visitor builds a value.
pub(crate) struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(value.into()))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Json<'de>, E> {
        Number::deserialize(de::value::I128Deserializer::<E>::new(value)).map(Json::Number)
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Json<'de>, E> {
        Number::deserialize(de::value::U128Deserializer::<E>::new(value)).map(Json::Number)
    }

    fn visit_f64<E>(self, value: f64) -> Result<Json<'de>, E> {
        Ok(Number::from_f64(value).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(value)))
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json<'de>, D::Error> {
        Json::deserialize(deserializer)
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut entries: Vec<(Cow<'de, str>, Json<'de>)> = Vec::new();
        let (mut large, mut repeated) = (false, false);
        while let Some(Key(key)) = map.next_key()? {
            let value = map.next_value()?;
            if !large {
                if let Some(slot) = entries.iter_mut().find(|(k, _)| *k == key) {
                    slot.1 = value;
                    repeated = true;
                    continue;
                }
                large = entries.len() >= LINEAR_DEDUP;
            }
            entries.push((key, value));
        }
        Ok(Json::Object(if large {
            let mut object = JsonObj::dedup_hashed(entries);
            object.repeated |= repeated;
            object
        } else {
            JsonObj { entries, repeated }
        }))
    }
}

/// An object key, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, value: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(value)))
    }

    fn visit_str<E>(self, value: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(value.to_owned())))
    }

    fn visit_string<E>(self, value: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(text: &str) -> (serde_json::Value, serde_json::Value) {
        let value: serde_json::Value = serde_json::from_str(text).expect("serde_json value");
        let tree: Json = serde_json::from_str(text).expect("tree");
        (value, tree.to_value())
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for text in [
            r#"{"a": 1, "b": [true, null, -2, 3.5, 1e300, "x\"y", "é\u00e9"], "c": {}}"#,
            r#"[0, -0, 18446744073709551615, -9223372036854775808, 0.1, 1E2]"#,
            r#"{"k": 1, "j": 2, "k": 3}"#,
            r#"{"\u006b": 1, "k": 2}"#,
            r#""plain""#,
        ] {
            let (value, tree) = both(text);
            assert_eq!(value, tree, "{text}");
            // Key order too (serde_json's `==` on maps ignores it).
            assert_eq!(value.to_string(), tree.to_string(), "{text}");
        }
    }

    #[test]
    fn repeated_keys_keep_the_first_place_and_the_last_value_in_large_objects() {
        let mut text = String::from("{");
        for idx in 0..40 {
            text.push_str(&format!("\"k{}\": {idx},", idx % 25));
        }
        text.push_str("\"last\": true}");
        let (value, tree) = both(&text);
        assert_eq!(value.to_string(), tree.to_string());
    }

    #[test]
    fn rejects_what_serde_json_rejects() {
        for text in [
            "{\"a\": }",
            "[1,]",
            "{\"a\": 1} x",
            "01",
            "\"\\x\"",
            "1e400",
        ] {
            let value = serde_json::from_str::<serde_json::Value>(text).map(|_| ());
            let tree = serde_json::from_str::<Json>(text).map(|_| ());
            assert_eq!(
                value.map_err(|e| e.to_string()),
                tree.map_err(|e| e.to_string()),
                "{text}"
            );
        }
    }

    #[test]
    fn borrows_strings_without_escapes() {
        let tree: Json = serde_json::from_str(r#"{"a": "plain", "b\n": "esc\t"}"#).expect("tree");
        let Json::Object(map) = &tree else {
            panic!("an object");
        };
        let kinds: Vec<(bool, bool)> = map
            .entries
            .iter()
            .map(|(k, v)| {
                let Json::String(s) = v else {
                    panic!("a string")
                };
                (matches!(k, Cow::Borrowed(_)), matches!(s, Cow::Borrowed(_)))
            })
            .collect();
        assert_eq!(kinds, [(true, true), (false, false)]);
    }

    #[test]
    fn equality_ignores_member_order_like_serde_json() {
        let a: Json = serde_json::from_str(r#"{"x": 1, "y": [1, 2]}"#).expect("a");
        let b: Json = serde_json::from_str(r#"{"y": [1, 2], "x": 1}"#).expect("b");
        let c: Json = serde_json::from_str(r#"{"y": [1, 2], "x": 1.0}"#).expect("c");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_value() == c.to_value(), a == c);
    }
}
