//! Canonical JSON: fixed vectors checked against the reference writers, and properties.
//!
//! The string and key vectors were produced with Python's `json.dumps(v, sort_keys=True,
//! separators=(",", ":"), ensure_ascii=True)` (the Normandy server), which agrees with
//! Firefox's `CanonicalJSON` on them; the number vectors with node's `JSON.stringify`.

use flightdeck_client::canonical::{self, compare_utf16};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn canonical_of(text: &str) -> String {
    canonical::to_string(&serde_json::from_str(text).unwrap())
}

#[test]
fn a_normandy_recipe_canonicalises_as_the_server_signs_it() {
    let recipe = r#"{
      "id": 101,
      "name": "Enable HTTP/3 for release users",
      "revision_id": "2001",
      "action": "preference-rollout",
      "arguments": {
        "slug": "http3-rollout",
        "preferences": [
          {"preferenceName": "network.http.http3.enable", "value": true}
        ]
      },
      "filter_expression": "normandy.channel in ['release', 'beta'] && normandy.version|versionCompare('115.!') >= 0 && [normandy.userId, normandy.recipe.id]|stableSample(0.5)",
      "capabilities": ["action.preference-rollout", "jexl.transform.stableSample", "jexl.transform.versionCompare"],
      "uses_only_baseline_capabilities": false
    }"#;
    assert_eq!(
        canonical_of(recipe),
        r#"{"action":"preference-rollout","arguments":{"preferences":[{"preferenceName":"network.http.http3.enable","value":true}],"slug":"http3-rollout"},"capabilities":["action.preference-rollout","jexl.transform.stableSample","jexl.transform.versionCompare"],"filter_expression":"normandy.channel in ['release', 'beta'] && normandy.version|versionCompare('115.!') >= 0 && [normandy.userId, normandy.recipe.id]|stableSample(0.5)","id":101,"name":"Enable HTTP/3 for release users","revision_id":"2001","uses_only_baseline_capabilities":false}"#
    );
}

#[test]
fn non_ascii_controls_and_astral_characters() {
    let value = json!({
        "name": "Déploiement 🚀 «HTTP/3»",
        "z": [null, true, false, -5, 0, "tab\there"],
        "A": {"b": "\u{2028}", "a": "\u{7f}\u{0}"},
        "é": "ünïcödé"
    });
    assert_eq!(
        canonical::to_string(&value),
        r#"{"A":{"a":"\u007f\u0000","b":"\u2028"},"name":"D\u00e9ploiement \ud83d\ude80 \u00abHTTP/3\u00bb","z":[null,true,false,-5,0,"tab\there"],"\u00e9":"\u00fcn\u00efc\u00f6d\u00e9"}"#
    );
}

#[test]
fn numbers_match_javascript() {
    // (input, JSON.stringify(JSON.parse(input))) from node.
    let vectors = [
        ("0.1", "0.1"),
        ("0.30000000000000004", "0.30000000000000004"),
        ("0.3333333333333333", "0.3333333333333333"),
        ("-1e-7", "-1e-7"),
        ("1.23e-18", "1.23e-18"),
        ("1e300", "1e+300"),
        ("9007199254740992", "9007199254740992"),
        ("9007199254740994", "9007199254740994"),
        ("-2147483648", "-2147483648"),
        ("4.35", "4.35"),
        ("0.0000015", "0.0000015"),
        ("100.0", "100"),
        ("1E21", "1e+21"),
        ("123456789.125", "123456789.125"),
        ("5e-324", "5e-324"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
    ];
    for (input, expected) in vectors {
        assert_eq!(canonical_of(input), expected, "{input}");
    }
    // CanonicalJSON keeps negative zero (JSON.stringify would write 0).
    assert_eq!(canonical_of("[-0, -0.0, 0]"), "[-0,-0,0]");
}

/// Numbers compared as JavaScript sees them (the canonical form writes `5.0` as `5`, which
/// reads back as an integer).
fn same_as_javascript(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_as_javascript(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, a)| y.get(key).is_some_and(|b| same_as_javascript(a, b)))
        }
        _ => a == b,
    }
}

/// Every object in `value` lists its keys in UTF-16 order (serde_json keeps the text order).
fn keys_sorted(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().all(keys_sorted),
        Value::Object(map) => {
            let keys: Vec<&String> = map.keys().collect();
            keys.windows(2)
                .all(|pair| compare_utf16(pair[0], pair[1]).is_lt())
                && map.values().all(keys_sorted)
        }
        _ => true,
    }
}

fn reversed(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, item) in map.iter().rev() {
                out.insert(key.clone(), reversed(item));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..(1i64 << 53)).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z\u{e000}-\u{e010}\u{1f600}-\u{1f602}]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        any::<String>(),
                        "[a-c\u{ff21}\u{1f600}]{0,2}".prop_map(String::from)
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn output_reads_back_as_the_same_value(value in json_value()) {
        let text = canonical::to_string(&value);
        prop_assert!(text.is_ascii());
        prop_assert!(!text.contains('\n'));
        let back: Value = serde_json::from_str(&text).unwrap();
        prop_assert!(same_as_javascript(&value, &back), "{} -> {}", value, text);
        prop_assert!(keys_sorted(&back), "{}", text);
    }

    #[test]
    fn canonicalising_is_idempotent_and_ignores_key_order(value in json_value()) {
        let once = canonical::to_string(&value);
        let twice = canonical::to_string(&serde_json::from_str(&once).unwrap());
        prop_assert_eq!(&once, &twice);
        prop_assert_eq!(&once, &canonical::to_string(&reversed(&value)));
    }

    #[test]
    fn utf16_order_is_a_total_order_that_agrees_with_javascript_on_bmp(
        a in any::<String>(), b in any::<String>()
    ) {
        let forward = compare_utf16(&a, &b);
        prop_assert_eq!(forward.reverse(), compare_utf16(&b, &a));
        prop_assert_eq!(forward.is_eq(), a == b);
        let astral = |s: &str| s.chars().any(|c| u32::from(c) > 0xffff);
        if !astral(&a) && !astral(&b) {
            // Without surrogate pairs, UTF-16 order is code point (byte) order.
            prop_assert_eq!(forward, a.cmp(&b));
        }
    }
}
