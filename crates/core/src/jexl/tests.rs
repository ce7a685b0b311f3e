//! Tests for the filter language. `testdata/mozjexl_cases.json` holds expressions with the
//! results mozjexl 1.1.6 gives under Node with Normandy's `intersect` and its pure transforms
//! registered, over the context in [`CONTEXT`] (TZ=UTC).

use super::*;
use crate::context::{PrefEntry, PrefValue};

/// Tokens that reach the Normandy filter environment and its `recipe` in every way the
/// language allows (members, chains, brackets, filters, relative identifiers, transforms).
const RECIPE_TOKENS: &[&str] = &[
    "normandy",
    "env",
    ".",
    "recipe",
    "id",
    "arguments",
    "slug",
    "list",
    "[",
    "]",
    "[0]",
    "['recipe']",
    "['arguments']",
    "[.recipe]",
    "[.id == 7]",
    "|keys",
    "|length",
    "|values",
    "(",
    ")",
    "{a: ",
    "}",
    ",",
    " ",
    "==",
    "!=",
    "&&",
    "||",
    "!",
    "?",
    ":",
    "7",
    "'s'",
    ".normandy",
    ".env",
    ".recipe",
    ".id",
    ".arguments",
    " in ",
];

/// The context the oracle cases were generated with.
const CONTEXT: &str = r#"{"a": 1, "s": "abc", "arr": [{"x":1,"y":"a"},{"x":2,"y":"b"}], "o": {"p": {"q": 5}}, "n": null, "z": 0}"#;

fn vars(json: &str) -> Value {
    Value::from_json(&serde_json::from_str(json).unwrap())
}

/// Replaces nested `undefined` by a marker, as the oracle's `JSON.stringify` replacer does.
fn mark_undefined(v: &Value) -> Value {
    match v {
        Value::Undefined => Value::string("<undefined>"),
        Value::Array(items) => Value::array(items.iter().map(mark_undefined).collect()),
        Value::Object(map) => Value::object(
            map.iter()
                .map(|(k, v)| (k.clone(), mark_undefined(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Renders a result the way the oracle script does.
fn show(result: Result<Value, String>) -> String {
    match result {
        Err(_) => "ERR".into(),
        Ok(Value::Undefined) => "undefined".into(),
        Ok(Value::Date(ms)) => format!("Date({})", crate::value::js_number_to_string(ms)),
        Ok(v) => mark_undefined(&v).to_js_json_string().unwrap(),
    }
}

fn run(expr: &str, vars: &Value, prefs: &PrefSnapshot) -> Result<Value, String> {
    Expression::parse(expr)
        .map_err(|e| e.to_string())?
        .eval(vars, prefs)
        .map_err(|e| e.to_string())
}

/// Evaluates `expr` over `vars_json` and compares the rendered result with `expected`.
fn check(expr: &str, vars_json: &str, expected: &str) {
    let got = show(run(expr, &vars(vars_json), &PrefSnapshot::new()));
    assert_eq!(got, expected, "expression: {expr}");
}

#[test]
fn matches_mozjexl_oracle_cases() {
    let cases: Vec<(String, String)> =
        serde_json::from_str(include_str!("testdata/mozjexl_cases.json")).unwrap();
    let context = vars(CONTEXT);
    let mut failures = Vec::new();
    for (expr, expected) in &cases {
        let got = show(run(expr, &context, &PrefSnapshot::new()));
        if &got != expected {
            failures.push(format!("{expr:?}: got {got}, mozjexl {expected}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn pref(default: Option<PrefValue>, user: Option<PrefValue>) -> PrefEntry {
    PrefEntry { default, user }
}

fn prefs() -> PrefSnapshot {
    let mut p = PrefSnapshot::new();
    p.insert(
        "app.str".into(),
        pref(Some(PrefValue::String("def".into())), None),
    );
    p.insert(
        "app.int".into(),
        pref(Some(PrefValue::Int(1)), Some(PrefValue::Int(42))),
    );
    p.insert("app.bool".into(), pref(None, Some(PrefValue::Bool(true))));
    p.insert("app.empty".into(), pref(None, None));
    p.insert("123".into(), pref(Some(PrefValue::Int(7)), None));
    p
}

fn check_prefs(expr: &str, expected: &str) {
    let got = show(run(expr, &vars(CONTEXT), &prefs()));
    assert_eq!(got, expected, "expression: {expr}");
}

#[test]
fn operators_and_precedence() {
    for (expr, expected) in [
        ("1 + 2 * 3", "7"),
        ("2 * 3 % 2", "2"),  // `%` binds tighter than `*`
        ("2 ^ 3 ^ 2", "64"), // left-associative
        ("10 - 2 - 3", "5"),
        ("7 // 2", "3"),
        ("-7 // 2", "-4"),
        ("7 // -2", "-4"),
        ("-7 % 3", "-1"),
        ("7 % -3", "1"),
        ("1 / 3", "0.3333333333333333"),
        ("0.1 + 0.2", "0.30000000000000004"),
        ("1 / 0", "null"), // Infinity renders as null in JSON
        ("1 ^ (undefined)", "null"),
        ("true || false && false", "false"), // `&&` and `||` share precedence 10
        ("1 == 1 == true", "true"),
        ("1 + 1 ? 'y' : 'n'", "\"y\""),
        ("a ? 1 : 2 + 1", "1"),
        ("z ? 1 : 2 + 1", "3"),
        ("[1,2] intersect [2] == [2]", "false"),
        ("2 * 3 intersect [6]", "undefined"), // (2 * 3) intersect [6]
    ] {
        check(expr, CONTEXT, expected);
    }
}

#[test]
fn javascript_equality_and_truthiness() {
    for (expr, expected) in [
        ("'1' == 1", "true"),
        ("undefined == n", "true"),
        ("0 == ''", "true"),
        ("[1] == 1", "true"),
        ("[] == false", "true"),
        ("'true' == true", "false"),
        ("0 / 0 != 0 / 0", "true"), // NaN != NaN
        ("n == 0", "false"),
        ("arr == arr", "true"),
        ("[1] == [1]", "false"),
        ("undefined", "undefined"),
        ("n", "null"),
        ("null", "undefined"), // no null literal: an unknown identifier
        ("!''", "true"),
        ("![]", "false"),
        ("!{}", "false"),
        ("0 || ''", "\"\""),
        ("1 && 'x'", "\"x\""),
        ("'v' + 1", "\"v1\""),
        ("1 + '1'", "\"11\""),
        ("1 + true", "2"),
        ("[1,2] + [3]", "\"1,23\""),
        ("'2' > '10'", "true"),
        ("2 > '10'", "false"),
        ("undefined >= 1", "false"),
        ("n >= 0", "true"),
    ] {
        check(expr, CONTEXT, expected);
    }
}

#[test]
fn members_filters_and_literals() {
    for (expr, expected) in [
        ("o.p.q", "5"),
        ("arr.y", "\"a\""),     // property of an array reads the first element
        ("o.x.y", "undefined"), // undefined propagates
        ("n.x", "ERR"),         // null throws
        ("[].x", "ERR"),        // and so does an empty array
        ("arr[1].y", "\"b\""),
        ("arr['length']", "2"),
        ("s[1]", "\"b\""),
        ("s.length", "3"),
        ("arr[.x == 2].y", "\"b\""),
        ("arr[.x > 0 && .y == 'b']", "[{\"x\":2,\"y\":\"b\"}]"),
        ("arr[.x == 2 && a]", "[]"), // `a` is relative after a relative identifier
        ("arr[(.x == 2)]", "undefined"), // relative only directly inside the brackets
        ("arr[true]", "[{\"x\":1,\"y\":\"a\"},{\"x\":2,\"y\":\"b\"}]"),
        ("arr[false]", "undefined"),
        ("s[.length > 2]", "[\"abc\"]"),
        ("{a: 1, b: [1, 2], a: 3}", "{\"a\":3,\"b\":[1,2]}"),
        ("{'a': 1}", "ERR"),
        ("[1,,2]", "[1,2]"),
        ("'it\\'s'", "\"it's\""),
        ("\"say \\\"hi\\\" ok\"", "\"say \\\"hi\\\" ok\""),
        // An escaped quote right before the closing quote ends the string early.
        ("\"say \\\"hi\\\"\"", "ERR"),
        ("1 # a comment", "1"),
        ("--5", "-5"),
        ("-a", "ERR"),
        ("[1, -1]", "ERR"),
        ("(!a).b", "true"), // mozjexl reads this as `!(.b)`
        ("(a", "1"),
        ("((z < 2.5", "true"),
        ("((a) + (1", "ERR"),
        ("(((a", "1"),
        ("(a ? 1 : (2", "1"),
        ("1 + (2", "ERR"),
        ("a ?: 2", "1"),
        ("z ?: 2", "2"),
        ("a|keys ? 1 : 2", "ERR"),
        ("a|nope", "ERR"),
        ("z ? a|nope : 1", "1"),
    ] {
        check(expr, CONTEXT, expected);
    }
}

#[test]
fn transforms_without_state() {
    for (expr, expected) in [
        ("o|keys", "[\"p\"]"),
        ("arr|keys", "[\"0\",\"1\"]"),
        ("s|keys", "undefined"),
        ("o.p|values", "[5]"),
        ("arr|length", "2"),
        ("s|length", "undefined"),
        ("arr|mapToProperty('y')", "[\"a\",\"b\"]"),
        ("[n]|mapToProperty('x')", "ERR"),
        (
            "'Firefox 120.0'|regExpMatch('Firefox (\\\\d+)')",
            "[\"Firefox 120\",\"120\"]",
        ),
        ("'a1b22'|regExpMatch('\\\\d+', 'g')", "[\"1\",\"22\"]"),
        ("'abc'|regExpMatch('x')", "null"),
        (
            "'abc'|regExpMatch('(a)(x)?')",
            "[\"a\",\"a\",\"<undefined>\"]",
        ),
        ("'ABC'|regExpMatch('b', 'i')", "[\"B\"]"),
        ("'abc'|regExpMatch('b', 'q')", "ERR"),
        ("'abab'|regExpMatch('(a)\\\\1')", "null"),
        ("'aab'|regExpMatch('(a)\\\\1')", "[\"aa\",\"a\"]"),
        ("'ab'|regExpMatch('a(?=b)')", "[\"a\"]"),
        ("1|regExpMatch('1')", "ERR"),
        ("'2020-01-01'|date", "Date(1577836800000)"),
        ("'2020-01-01T12:00:00+02:00'|date", "Date(1577872800000)"),
        ("'bogus'|date", "Date(NaN)"),
        ("'2020-01-01'|date < '2020-01-02'|date", "true"),
        (
            "'2020-01-01'|date + ''",
            "\"Wed Jan 01 2020 00:00:00 GMT+0000 (Coordinated Universal Time)\"",
        ),
        ("n|date", "Date(0)"),
    ] {
        check(expr, CONTEXT, expected);
    }
}

/// `regExpMatch` is `new RegExp(pattern, flags)` and `String#match`, with JavaScript's syntax
/// (Annex B without `u`), UTF-16 units without `u`, and its case-insensitivity (without `u`, no
/// non-ASCII character matches an ASCII one). Expectations are mozjexl's under Node.
#[test]
fn regexp_match_follows_javascript() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("abab", "(a)\\1", "", "null"),
        ("aab", "(a)\\1", "", "[\"aa\",\"a\"]"),
        ("aa", "(?<n>a)\\k<n>", "", "[\"aa\",\"a\"]"),
        ("a1", "(a)\\1", "", "null"),
        ("ab", "a(?=b)", "", "[\"a\"]"),
        ("ac", "a(?!b)", "", "[\"a\"]"),
        ("xab", "(?<=a)b", "", "[\"b\"]"),
        ("ab", "(?<!a)b", "", "null"),
        ("\u{17F}", "s", "i", "null"),
        ("\u{212A}", "k", "i", "null"),
        ("\u{212A}", "k", "iu", "[\"\u{212A}\"]"),
        ("\u{17F}", "s", "iu", "[\"\u{17F}\"]"),
        ("S", "s", "i", "[\"S\"]"),
        ("\u{131}", "i", "i", "null"),
        ("\u{212A}", "[a-z]", "i", "null"),
        ("\u{212A}", "[a-z]", "iu", "[\"\u{212A}\"]"),
        ("\u{212A}", "\\w", "iu", "[\"\u{212A}\"]"),
        ("\u{212A}", "\\W", "i", "[\"\u{212A}\"]"),
        ("\u{212A}", "[\\W]", "iu", "null"),
        ("sS", "(s)\\1", "i", "[\"sS\",\"s\"]"),
        ("s\u{17F}", "(s)\\1", "i", "null"),
        ("\u{E9} \u{C9}", "\u{E9}", "gi", "[\"\u{E9}\",\"\u{C9}\"]"),
        ("\u{DF}", "\u{1E9E}", "i", "null"),
        ("\u{DF}", "\u{1E9E}", "iu", "[\"\u{DF}\"]"),
        ("\u{3C2}", "\u{3A3}", "i", "[\"\u{3C2}\"]"),
        ("\u{1F600}", "^.$", "", "null"),
        ("\u{1F600}", "^.$", "u", "[\"\u{1F600}\"]"),
        (
            "\u{1F600}\u{1F600}",
            "\\uD83D\\uDE00",
            "g",
            "[\"\u{1F600}\",\"\u{1F600}\"]",
        ),
        ("a\u{1F600}b", "b", "", "[\"b\"]"),
        ("\u{1F600}", "\\u{1F600}", "u", "[\"\u{1F600}\"]"),
        ("uuu", "\\u{3}", "", "[\"uuu\"]"),
        ("a{", "a{", "", "[\"a{\"]"),
        ("]", "]", "", "[\"]\"]"),
        ("\\c", "\\c", "", "[\"\\\\c\"]"),
        ("\u{1}", "\\1", "", "[\"\\u0001\"]"),
        ("8", "\\8", "", "[\"8\"]"),
        ("a-5", "[\\d-z]", "g", "[\"-\",\"5\"]"),
        ("\u{8}", "[\\b]", "", "[\"\\b\"]"),
        ("\u{1}", "[\\cA]", "", "[\"\\u0001\"]"),
        ("aXbx", "x", "gi", "[\"X\",\"x\"]"),
        ("ab", "a", "gg", "ERR"),
        ("ab", "a", "uv", "ERR"),
        ("ab", "a", "q", "ERR"),
        ("aa", "a", "y", "[\"a\"]"),
        ("ba", "a", "y", "null"),
        ("aab", "a", "gy", "[\"a\",\"a\"]"),
        ("", "", "g", "[\"\"]"),
        ("ab", "", "g", "[\"\",\"\",\"\"]"),
        ("\u{1F600}", "", "g", "[\"\",\"\",\"\"]"),
        ("\u{1F600}", "", "gu", "[\"\",\"\"]"),
        ("a", "(?i:a)", "", "ERR"),
        ("x", "(?<a>x)|(?<a>y)", "", "ERR"),
        ("b", "(a)?b", "", "[\"b\",\"<undefined>\"]"),
        ("a", "(", "", "ERR"),
        ("a", "a{2,1}", "", "ERR"),
        ("a", "[z-a]", "", "ERR"),
        ("a", "\\", "", "ERR"),
    ];
    for (subject, pattern, flags, expected) in cases {
        let mut map = crate::value::Object::new();
        map.insert("s".into(), Value::string(subject));
        map.insert("p".into(), Value::string(pattern));
        map.insert("f".into(), Value::string(flags));
        let got = show(run(
            "s|regExpMatch(p, f)",
            &Value::object(map),
            &PrefSnapshot::new(),
        ));
        assert_eq!(&got, expected, "/{pattern}/{flags} on {subject:?}");
    }
    // Literal patterns are compiled once, with the same meaning.
    check("'a\u{17F}S'|regExpMatch('s', 'gi')", CONTEXT, "[\"S\"]");
    check("'x'|regExpMatch('(?i:x)')", CONTEXT, "ERR");
}

/// `==` compares arrays and objects by reference: member access, `&&`/`||`/`?:`, a `true`
/// static filter and a preference default hand back the same object; transforms, filters,
/// `intersect` and literals build new ones (results checked against mozjexl).
#[test]
fn object_identity_follows_javascript() {
    for (expr, expected) in [
        ("arr == arr", "true"),
        ("o.p == o.p", "true"),
        ("arr.x == arr[0].x", "true"),
        ("{k: arr}.k == arr", "true"),
        ("(arr && o) == o", "true"),
        ("(z || arr) == arr", "true"),
        ("(a ? arr : o) == arr", "true"),
        ("(arr ?: o) == arr", "true"),
        ("arr[true] == arr", "true"),
        ("arr[.x == 1][0] == arr[0]", "true"),
        ("o[.p][0] == o", "true"),
        ("'missing'|preferenceValue(arr) == arr", "true"),
        ("arr in [arr]", "true"),
        ("arr|values == arr", "false"),
        ("arr|values|values == arr|values", "false"),
        ("o.p|values == o.p|values", "false"),
        ("arr|keys == arr|keys", "false"),
        ("arr|mapToProperty('x') == arr|mapToProperty('x')", "false"),
        ("arr[.x > 0] == arr", "false"),
        ("o[.p] == o", "false"),
        ("(arr intersect arr) == arr", "false"),
        ("[arr] == [arr]", "false"),
        ("[1] == [1]", "false"),
        ("{} == {}", "false"),
        ("'abc'|regExpMatch('b') == 'abc'|regExpMatch('b')", "false"),
    ] {
        check(expr, CONTEXT, expected);
    }
}

/// Where this engine knowingly differs from mozjexl under Node (see the module docs).
#[test]
fn documented_divergences() {
    // Object.prototype members do not exist here (in JavaScript they are functions).
    check("toString", CONTEXT, "undefined");
    check("o.constructor", CONTEXT, "undefined");
    // Only ISO-like date strings parse; V8's legacy formats are invalid dates.
    check("'Jan 1 2020'|date", CONTEXT, "Date(NaN)");
    check("'0'|date", CONTEXT, "Date(NaN)");
    // `^` is fdlibm's pow (V8 and SpiderMonkey agree with it for small integers and common
    // fractions); V8's build can differ in the last bit for large odd powers.
    check("0.5 ^ -2.5", CONTEXT, "5.65685424949238");
    check("1.1 ^ 10", CONTEXT, "2.5937424601000023");
    check("-25 ^ 13", CONTEXT, "-1490116119384765700"); // V8: -1490116119384765400
}

#[test]
fn preference_transforms() {
    for (expr, expected) in [
        ("'app.str'|preferenceValue", "\"def\""),
        ("'app.int'|preferenceValue", "42"),
        ("'app.bool'|preferenceValue", "true"),
        ("'missing'|preferenceValue", "undefined"),
        ("'missing'|preferenceValue('dflt')", "\"dflt\""),
        ("'app.empty'|preferenceValue(5)", "5"),
        ("123|preferenceValue", "7"),
        ("n|preferenceValue(1)", "1"),
        ("'app.int'|preferenceIsUserSet", "true"),
        ("'app.str'|preferenceIsUserSet", "false"),
        ("'missing'|preferenceIsUserSet", "false"),
        ("'app.str'|preferenceExists", "true"),
        ("'app.empty'|preferenceExists", "false"),
        ("'missing'|preferenceExists", "false"),
        ("'x' in 'app.str'|preferenceValue", "false"),
        ("'de' in 'app.str'|preferenceValue", "true"),
    ] {
        check_prefs(expr, expected);
    }
}

#[test]
fn sampling_reference_vectors() {
    for (expr, expected) in [
        ("['test']|stableSample(1)", "true"),
        ("['test']|stableSample(0)", "false"),
        ("['test-1']|stableSample(0.5)", "true"),
        ("['test-4']|stableSample(0.5)", "false"),
        ("['test-1']|bucketSample(0,5,10)", "true"),
        ("['test-4']|bucketSample(0,5,10)", "false"),
        ("['test']|bucketSample(8,4,10)", "true"),
        ("['test']|bucketSample(18,4,10)", "true"),
        ("'test'|stableSample(2)", "ERR"),
        ("'test'|stableSample(-1)", "ERR"),
        ("'test'|stableSample('0.5')", "true"),
        // A NaN fraction does not throw in Firefox: its key is the text `000000000NaN`.
        ("'test'|stableSample", "false"),
        ("'test'|stableSample('x')", "false"),
        ("'test'|bucketSample(0,1,0)", "false"),
        ("'test'|bucketSample(0)", "false"),
        ("['test']|bucketSample('x',3,10)", "false"),
        ("['test']|bucketSample(-2,3,10)", "ERR"),
        // JavaScript arithmetic: `1 + "5"` is `"15"`, and `"15" > "9"` compares text.
        ("['test']|bucketSample('1','5',10)", "true"),
        ("['test']|bucketSample('1','5','10')", "true"),
        ("['test']|bucketSample(1,5,9)", "false"),
        ("['test']|bucketSample(1,'5','9')", "ERR"),
        ("['test']|bucketSample(8,'4',10)", "true"),
        ("['test']|bucketSample(0,[5],10)", "false"),
    ] {
        check(expr, CONTEXT, expected);
    }
}

#[test]
fn version_compare_reference_vectors() {
    for (a, b, sign) in [
        ("1.0.0", "1", "0"),
        ("1.0.0", "1.1", "-1"),
        ("1.0.0", "0.1", "1"),
        ("111.0.1", "111.0.2", "-1"),
        ("113.0a1", "113", "-1"),
        ("113.0a1", "113.0a0", "1"),
        ("114", "113.0a0", "1"),
        ("112", "113.0a0", "-1"),
        ("93.!", "93.0a1", "-1"),
        ("93.*", "94.0a1", "-1"),
        ("1.0+", "1.1pre", "0"),
    ] {
        check(&format!("'{a}'|versionCompare('{b}')"), CONTEXT, sign);
    }
    check(
        "normandy.version|versionCompare('100.!') >= 0",
        r#"{"normandy": {"version": "128.0.1"}}"#,
        "true",
    );
}

#[test]
fn eval_bool_casts_like_normandy() {
    let e = Expression::parse("arr[.x > 5]").unwrap();
    assert!(e.eval_bool(&vars(CONTEXT), &PrefSnapshot::new()).unwrap());
    let e = Expression::parse("o.missing").unwrap();
    assert!(!e.eval_bool(&vars(CONTEXT), &PrefSnapshot::new()).unwrap());
}

#[test]
fn normandy_parse_flattens_newlines() {
    let e = Expression::parse_normandy("a == 1 # comment\n && false").unwrap();
    // Flattened, the comment swallows `&& false`.
    assert!(e.eval_bool(&vars(CONTEXT), &PrefSnapshot::new()).unwrap());
    let e = Expression::parse("a == 1 # comment\n && false").unwrap();
    assert!(!e.eval_bool(&vars(CONTEXT), &PrefSnapshot::new()).unwrap());
}

#[test]
fn parse_errors_report_offsets() {
    for (expr, offset) in [
        ("1 +", 3),
        ("a b", 2),
        ("1 @ 2", 2),
        ("", 0),
        ("{'a': 1}", 1),
        ("a|keys ? 1 : 2", 7),
    ] {
        let err = Expression::parse(expr).unwrap_err();
        assert_eq!(err.offset, offset, "{expr}: {err}");
    }
}

#[test]
fn limits_give_errors_not_crashes() {
    let n = 100_000;
    for expr in [
        "(".repeat(n) + "1" + &")".repeat(n),
        "[".repeat(n) + "1" + &"]".repeat(n),
        "!".repeat(n) + "1",
        "{a:".repeat(n) + "1" + &"}".repeat(n),
        "a".to_owned() + &".a".repeat(n / 2),
        "(".repeat(n),
        "[".repeat(n),
    ] {
        assert!(Expression::parse(&expr).is_err());
    }
    // A 64 KiB source of minus signs glued to a number is just -1, as in mozjexl.
    let e = Expression::parse(&("-".repeat(60_000) + "1")).unwrap();
    assert_eq!(
        show(
            e.eval(&Value::Undefined, &PrefSnapshot::new())
                .map_err(|e| e.message)
        ),
        "-1"
    );
    assert!(Expression::parse(&"1".repeat(MAX_SOURCE_LEN + 1)).is_err());
    // Long `&&` / `||` chains are flattened and stay within the depth limit.
    let chain = vec!["a == 1"; 2000].join(" && ");
    let e = Expression::parse(&chain).unwrap();
    assert!(e.eval_bool(&vars(CONTEXT), &PrefSnapshot::new()).unwrap());
    let chain = vec!["z"; 2000].join(" || ");
    assert!(
        !Expression::parse(&chain)
            .unwrap()
            .eval_bool(&vars(CONTEXT), &PrefSnapshot::new())
            .unwrap()
    );
}

#[test]
fn expressions_are_shareable() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<Expression>();
    let e = Expression::parse("normandy.channel in ['release', 'beta']").unwrap();
    let v1 = vars(r#"{"normandy": {"channel": "beta"}}"#);
    let v2 = vars(r#"{"normandy": {"locale": "en-US", "channel": "nightly"}}"#);
    // The inline caches must not confuse differently shaped objects.
    for _ in 0..3 {
        assert!(e.eval_bool(&v1, &PrefSnapshot::new()).unwrap());
        assert!(!e.eval_bool(&v2, &PrefSnapshot::new()).unwrap());
    }
    assert_eq!(
        e.clone().source(),
        "normandy.channel in ['release', 'beta']"
    );
}

/// The outcome of `expr` compiled with `compile`, through `eval` and through `eval_bool`,
/// with values in a form that shows every difference that matters (`Debug`).
fn outcomes(
    expr: &str,
    compile: fn(&ast::Ast) -> program::Program,
    vars: &Value,
    prefs: &PrefSnapshot,
) -> (Result<String, String>, Result<bool, String>) {
    match Expression::parse_with(expr, None, compile) {
        Err(e) => (Err(format!("parse: {e}")), Err(format!("parse: {e}"))),
        Ok(e) => (
            e.eval(vars, prefs)
                .map(|v| format!("{v:?}"))
                .map_err(|e| e.message),
            e.eval_bool(vars, prefs).map_err(|e| e.message),
        ),
    }
}

/// Specialising the common clauses (and skipping the hash of a sample whose result no longer
/// matters) must change no result and no error message; and `eval_bool` must be the
/// truthiness of `eval`, error for error. Both programs must be well formed.
fn assert_specialising_changes_nothing(expr: &str, vars: &Value, prefs: &PrefSnapshot) {
    for compile in [compile::compile, compile::compile_general] {
        if let Ok(expression) = Expression::parse_with(expr, None, compile) {
            assert_well_formed(&expression.program, expr);
        }
    }
    let special = outcomes(expr, compile::compile, vars, prefs);
    let general = outcomes(expr, compile::compile_general, vars, prefs);
    assert_eq!(special, general, "{expr} over {vars:?}");
    let (value, truth) = special;
    let value_truth = Expression::parse(expr)
        .map_err(|e| format!("parse: {e}"))
        .and_then(|e| e.eval(vars, prefs).map_err(|e| e.message))
        .map(|v| v.is_truthy());
    assert_eq!(truth, value_truth, "{expr} over {vars:?} ({value:?})");
}

/// Every reference of `program` leads where the layout says: operands and spans within the
/// operations, names and strings within the text, globals and table indexes in range, the
/// name after a member and the constant after a string match in their slots.
fn assert_well_formed(program: &program::Program, expr: &str) {
    use program::{NO_OP, Op, Span};
    let n = program.ops.len() as u64;
    let op_ok = |id: u32| u64::from(id) < n;
    let span_ok = |span: Span| u64::from(span.start) + u64::from(span.len) <= n;
    let text_ok = |span: Span| {
        program
            .text
            .get(span.start as usize..(span.start + span.len) as usize)
            .is_some()
    };
    let keys_ok = |span: Span| {
        span_ok(span)
            && program
                .ops_in(span)
                .iter()
                .all(|op| matches!(op, Op::Key(_)))
    };
    let global_ok = |index: u32| program.global(index).is_some();
    assert!(
        span_ok(program.globals) && keys_ok(program.globals),
        "{expr}"
    );
    for (at, op) in program.ops.iter().enumerate() {
        let ok = match op {
            Op::Const(index) => (*index as usize) < program.tables.values.len(),
            Op::Global(index) => global_ok(*index),
            Op::Relative(name) | Op::Key(name) => text_ok(name.text),
            Op::GlobalMember { global, name } => {
                global_ok(u32::from(*global)) && text_ok(name.text)
            }
            Op::GlobalPath { global, steps } => global_ok(*global) && keys_ok(*steps),
            Op::RelativePath { steps } => steps.len > 0 && keys_ok(*steps),
            Op::Member { from } => op_ok(*from) && matches!(program.op(from + 1), Op::Key(_)),
            Op::Not(operand) => op_ok(*operand),
            Op::Binary { left, right, .. } => op_ok(*left) && op_ok(*right),
            Op::And { items, .. } | Op::Or { items, .. } | Op::Array(items) => span_ok(*items),
            Op::Conditional {
                test,
                consequent,
                alternate,
            } => op_ok(*test) && (*consequent == NO_OP || op_ok(*consequent)) && op_ok(*alternate),
            Op::FilterRelative { subject, expr } | Op::FilterStatic { subject, expr } => {
                op_ok(*subject) && op_ok(*expr)
            }
            Op::Transform {
                transform,
                operands,
            } => program.transform(*transform).is_some() && operands.len > 0 && span_ok(*operands),
            Op::Object { keys, values } => {
                span_ok(*values) && (*keys + values.len) as usize <= program.tables.values.len()
            }
            Op::Missing => true,
            Op::MatchText { subject, texts, .. } => {
                op_ok(*subject)
                    && matches!(program.op(subject + 1), Op::Const(_))
                    && text_ok(*texts)
            }
            Op::VersionCmp {
                subject, version, ..
            } => op_ok(*subject) && program.version(*version).is_some(),
            Op::StableSampleArray { items, rate, .. } => span_ok(*items) && op_ok(*rate),
        };
        assert!(ok, "{expr}: operation {at} {op:?}");
    }
}

#[test]
fn specialised_clauses_match_the_general_path_on_the_oracle_corpus() {
    #[derive(serde::Deserialize)]
    struct Case {
        expr: String,
        vars: serde_json::Value,
        #[serde(default)]
        prefs: PrefSnapshot,
    }
    let corpus = include_str!("../../tests/data/jexl-oracle.jsonl");
    let mut count = 0;
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        let case: Case = serde_json::from_str(line).unwrap();
        assert_specialising_changes_nothing(&case.expr, &Value::from_json(&case.vars), &case.prefs);
        count += 1;
    }
    assert!(count >= 2000, "{count} cases");
}

/// `vars` as Normandy binds them, with `recipe` set to `recipe`.
fn normandy_vars(recipe: serde_json::Value) -> Value {
    let environment = vars(
        r#"{"channel": "release", "userId": "u", "recipe": null, "version": "128.0",
            "list": [{"recipe": 1}, {"id": 2}]}"#,
    );
    let Value::Object(environment) = environment else {
        panic!("an object");
    };
    crate::context::filter_vars(&environment, Some(Value::from_json(&recipe)))
}

/// When `expr` is classified as reading no more of the recipe than `recipe.id`, binding
/// `recipe` to `{id}` alone must give the same value and the same error as `{id, arguments}`.
fn assert_recipe_id_is_enough(expr: &str) {
    let Ok(expression) = Expression::parse(expr) else {
        return;
    };
    if expression.reads_recipe_beyond_id() {
        return;
    }
    let outcome = |vars: &Value| {
        (
            expression
                .eval(vars, &prefs())
                .map(|v| format!("{v:?}"))
                .map_err(|e| e.message),
            expression.eval_bool(vars, &prefs()).map_err(|e| e.message),
        )
    };
    let whole = normandy_vars(serde_json::json!(
        {"id": 7, "arguments": {"slug": "s", "id": 8, "branches": [{"slug": "a"}]}}
    ));
    let id_only = normandy_vars(serde_json::json!({"id": 7}));
    assert_eq!(outcome(&whole), outcome(&id_only), "{expr}");
}

#[test]
fn filters_that_read_only_the_recipe_id_are_recognised() {
    for (expr, beyond_id) in [
        ("normandy.channel == 'release'", false),
        (
            "[normandy.userId, normandy.recipe.id]|stableSample(0.5)",
            false,
        ),
        (
            "[normandy.userId, env.recipe.id]|bucketSample(0, 10, 100)",
            false,
        ),
        (
            "normandy.recipe.id == 7 && env.version|versionCompare('100') > 0",
            false,
        ),
        ("normandy.recipe.id.x == undefined", false),
        ("normandy.list[.recipe == 1]|length", false),
        ("'x'|preferenceValue('y') == normandy.channel", false),
        ("normandy.recipe.arguments.slug == 's'", true),
        ("env.recipe.arguments", true),
        ("normandy.recipe", true),
        ("normandy.recipe|keys", true),
        ("normandy|keys", true),
        ("normandy['recipe'].arguments.slug", true),
        ("[normandy, 1]|length", true),
        ("normandy[.recipe.arguments.slug == 's'].channel", true),
        (".normandy.recipe.arguments.slug", true),
        (".env", true),
        ("env", true),
        ("(normandy).recipe.arguments.slug", true),
        ("normandy.recipe.arguments.branches[0].slug", true),
    ] {
        let expression = Expression::parse(expr).expect(expr);
        assert_eq!(expression.reads_recipe_beyond_id(), beyond_id, "{expr}");
        assert_recipe_id_is_enough(expr);
        // What the classification says must also hold when it says "id only".
        let whole = normandy_vars(serde_json::json!({"id": 7, "arguments": {"slug": "s"}}));
        let id_only = normandy_vars(serde_json::json!({"id": 7}));
        let differs = format!("{:?}", expression.eval(&whole, &prefs()))
            != format!("{:?}", expression.eval(&id_only, &prefs()));
        assert!(!differs || beyond_id, "{expr}");
    }
}

#[test]
fn every_short_token_sequence_classified_as_reading_the_recipe_id_reads_nothing_else() {
    let mut id_only = 0;
    for a in RECIPE_TOKENS {
        for b in RECIPE_TOKENS {
            for c in RECIPE_TOKENS {
                let expr = format!("{a}{b}{c}");
                if Expression::parse(&expr).is_ok_and(|e| !e.reads_recipe_beyond_id()) {
                    id_only += 1;
                }
                assert_recipe_id_is_enough(&expr);
            }
        }
    }
    assert!(
        id_only > 100,
        "only {id_only} sequences were classified as reading the id"
    );
}

/// The program the shortcut writes for `expr`, when it takes the expression.
fn shortcut_program(expr: &str) -> Option<String> {
    let tokens = lexer::tokenize(expr).ok()?;
    fast::compile(expr, &tokens).map(|program| format!("{program:?}"))
}

/// The program parsing and the general compiler build for `expr`.
fn general_program(expr: &str) -> Option<String> {
    Expression::parse_with(expr, None, compile::compile)
        .ok()
        .map(|expression| format!("{:?}", expression.program))
}

/// Where the shortcut takes an expression, its program is the general one, operation for
/// operation (and so evaluates the same). Returns whether it took it.
fn assert_shortcut_is_exact(expr: &str) -> bool {
    let Some(shortcut) = shortcut_program(expr) else {
        return false;
    };
    assert_eq!(Some(shortcut), general_program(expr), "{expr}");
    true
}

#[test]
fn a_string_clause_does_not_match_the_names_of_its_subject() {
    // The program's text holds a clause's strings and then its subject's names; a subject
    // value spelled like (the end of) those names must not be taken for one of the strings.
    let vars = vars(
        r#"{"normandy": {"channel": "hannel", "locale": "ocale", "recipe": {"id": "ecipeid"}},
            "a": {"b": "b"}}"#,
    );
    for (expr, expected) in [
        ("normandy.channel in ['release', 'beta']", false),
        ("normandy.channel == 'release'", false),
        ("normandy.channel != 'release'", true),
        ("normandy.locale == 'en-US'", false),
        ("normandy.locale in ['en-US']", false),
        ("normandy.recipe.id in ['x']", false),
        ("normandy.recipe.id in ['ecipeid']", true),
        ("a.b in []", false),
        ("a.b == 'b'", true),
    ] {
        for compile in [compile::compile, compile::compile_general] {
            let expression = Expression::parse_with(expr, None, compile).expect(expr);
            let value = expression.eval(&vars, &PrefSnapshot::new()).expect(expr);
            assert!(
                matches!(value, Value::Bool(b) if b == expected),
                "{expr}: {value:?}"
            );
        }
        let value = Expression::parse(expr)
            .expect(expr)
            .eval(&vars, &PrefSnapshot::new())
            .expect(expr);
        assert!(
            matches!(value, Value::Bool(b) if b == expected),
            "{expr}: {value:?}"
        );
    }
}

#[test]
fn the_shortcut_writes_the_general_program_for_manifest_filters() {
    let taken = [
        "normandy.channel in ['release', 'beta'] && normandy.locale in ['en-US', 'de', 'fr'] \
         && normandy.version|versionCompare('100.!') >= 0 \
         && normandy.version|versionCompare('120.*') < 0 \
         && [normandy.userId, normandy.recipe.id]|stableSample(0.1)",
        "normandy.channel == 'release'",
        "normandy.channel != \"nightly\"",
        "(normandy.locale in [\"en-US\",\"en-GB\"])&&(normandy.country in [\"US\"])",
        "(env.version|versionCompare(\"70.!\")>=0)&&(env.version|versionCompare(\"71.*\")<0)",
        "[normandy.userId,normandy.recipe.id]|stableSample(0.05)",
        "[normandy.userId]|stableSample(1) && channel == 'beta'",
        "[a, b.c, d.e.f, g]|stableSample(2)",
        "a.b.c.d == 'x' && a.b in ['y', 'z'] && e == 'w'",
        "normandy.version|versionCompare('') == -1 && x|versionCompare('1.0a') != 1",
        "normandy.locale == 'it\\'s' && normandy.channel in ['\\\\']",
        "normandy.channel in ['release'] && [normandy.userId]|stableSample('x' == 'x')",
    ];
    for expr in &taken[..taken.len() - 1] {
        assert!(assert_shortcut_is_exact(expr), "not taken: {expr}");
    }
    for expr in [
        "normandy.channel in ['release'] || normandy.locale == 'de'",
        "!(normandy.channel == 'release')",
        "normandy.isFirstRun",
        "normandy.channel == 'release' && (a == 'x' && b == 'y')",
        "[a, b, c, d, e]|stableSample(0.5)",
        "[a]|bucketSample(0, 10, 100)",
        "x|versionCompare('1') >= 0.5",
        "x|versionCompare('1') >= 40000",
        "x|versionCompare('1') in 0",
        "x in 'abc'",
        "x == 1",
        "'release' == normandy.channel",
        "normandy.channel == 'release' &&",
        "normandy['channel'] == 'release'",
        "",
        taken[taken.len() - 1],
    ] {
        assert!(!assert_shortcut_is_exact(expr), "taken: {expr}");
    }
    let long = format!("x == '{}'", "a".repeat(128));
    assert!(!assert_shortcut_is_exact(&long));
    assert!(assert_shortcut_is_exact(&format!(
        "x == '{}'",
        "a".repeat(127)
    )));
}

#[test]
fn the_shortcut_writes_the_general_program_on_the_oracle_corpus() {
    let corpus = include_str!("../../tests/data/jexl-oracle.jsonl");
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_shortcut_is_exact(case["expr"].as_str().unwrap_or_default());
    }
}

#[test]
fn specialised_clauses_match_the_general_path_on_filter_shapes() {
    let contexts = [
        CONTEXT,
        r#"{"normandy": {"channel": "release", "locale": "en-US", "version": "128.0.1", "userId": "u", "recipe": {"id": 7}}}"#,
        r#"{"normandy": {"channel": 1, "locale": ["en-US"], "version": 128, "userId": null, "recipe": null}}"#,
        r#"{"normandy": {"channel": {"a": 1}, "locale": true, "version": ["99"], "recipe": []}}"#,
        r#"{"normandy": []}"#,
        r#"{"normandy": null}"#,
        "{}",
    ];
    let clauses = [
        "normandy.channel in ['release', 'beta']",
        "normandy.channel in []",
        "normandy.channel in ['1', '[object Object]']",
        "normandy.locale == 'en-US'",
        "normandy.locale != 'en-US'",
        "normandy.locale == 'true'",
        "normandy.version|versionCompare('100.!') >= 0",
        "normandy.version|versionCompare('128.0.1') == 0",
        "normandy.version|versionCompare('') < 1",
        "[normandy.userId, normandy.recipe.id]|stableSample(0.5)",
        "[normandy.userId, normandy.recipe.id]|stableSample(1)",
        "[normandy.userId]|stableSample(2)",
        "[normandy.userId]|stableSample('x')",
        "[normandy.recipe.id.x]|stableSample(0.5)",
        "normandy.recipe.id",
        "!normandy.locale",
        // False or true without reading `normandy`, so that the clauses after it are only
        // checked for errors.
        "other == 'on'",
        "other != 'on'",
    ];
    let long = ["x".repeat(127), "y".repeat(128), "é".repeat(70)];
    let long_contexts: Vec<String> = long
        .iter()
        .map(|text| format!(r#"{{"normandy": {{"channel": "{text}", "locale": "{text}"}}}}"#))
        .collect();
    for text in &long {
        for context in long_contexts.iter().map(String::as_str).chain(contexts) {
            let vars = vars(context);
            for expr in [
                format!("normandy.channel == '{text}'"),
                format!("normandy.channel != '{text}'"),
                format!("normandy.channel in ['', '{text}', 'release']"),
                format!("normandy.locale in ['{text}'] && normandy.channel in ['{text}x', '']"),
            ] {
                assert_specialising_changes_nothing(&expr, &vars, &prefs());
            }
        }
    }
    for context in contexts {
        let vars = vars(context);
        for a in clauses {
            assert_specialising_changes_nothing(a, &vars, &prefs());
            for b in clauses {
                for op in ["&&", "||"] {
                    let expr = format!("{a} {op} {b}");
                    assert_specialising_changes_nothing(&expr, &vars, &prefs());
                    assert_specialising_changes_nothing(
                        &format!("!({expr}) {op} {a}"),
                        &vars,
                        &prefs(),
                    );
                }
            }
        }
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    const TOKENS: &[&str] = &[
        "a",
        "o",
        "arr",
        "n",
        "z",
        "s",
        ".",
        "x",
        "y",
        "p",
        "q",
        "[",
        "]",
        "(",
        ")",
        "{",
        "}",
        ":",
        ",",
        "?",
        "|",
        "keys",
        "values",
        "length",
        "date",
        "regExpMatch",
        "mapToProperty",
        "+",
        "-",
        "*",
        "/",
        "//",
        "%",
        "^",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        "in",
        "intersect",
        "!",
        "1",
        "0",
        "2.5",
        "'s'",
        "\"t\"",
        "'x'",
        "true",
        "false",
        " ",
        "#c\n",
        "'",
        "$",
        "@",
    ];

    fn token_soup() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.join(""))
    }

    /// Chains of the clause shapes that have specialised operations, over paths into the
    /// generated contexts.
    fn clause_soup() -> impl Strategy<Value = String> {
        let path = prop::sample::select(vec![
            "a", "s", "n", "z", "x", "o.p", "o.p.q", "arr.x", "arr.y", "n.x", "x.y", "o.s",
        ]);
        let text = prop::sample::select(vec!["'s'", "'abc'", "''", "'1'", "'true'", "'x'"]);
        let list = prop::sample::select(vec!["[]", "['s']", "['abc', 'x', '']", "['1', 'true']"]);
        let version = prop::sample::select(vec![
            "'1'",
            "'0'",
            "''",
            "'1.0a'",
            "'2.!'",
            "'100.!'",
            "'128.0.1'",
            "'99.*'",
            "128",
            "x",
        ]);
        let compare = prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]);
        let number = prop::sample::select(vec!["0", "1", "-1"]);
        let rate = prop::sample::select(vec!["0.5", "1", "0", "2", "'x'", "n", "a"]);
        let clause = prop_oneof![
            (path.clone(), prop::sample::select(vec!["==", "!="]), text)
                .prop_map(|(p, op, t)| format!("{p} {op} {t}")),
            (path.clone(), list).prop_map(|(p, l)| format!("{p} in {l}")),
            (path.clone(), version, compare, number)
                .prop_map(|(p, v, c, n)| format!("{p}|versionCompare({v}) {c} {n}")),
            (prop::collection::vec(path.clone(), 1..4), rate)
                .prop_map(|(ps, r)| format!("[{}]|stableSample({r})", ps.join(", "))),
            path.prop_map(str::to_owned),
        ];
        let joined = prop::collection::vec(
            (clause, prop::sample::select(vec![" && ", " || ", " && !"])),
            1..5,
        );
        joined.prop_map(|parts| {
            let mut out = String::new();
            for (i, (clause, op)) in parts.iter().enumerate() {
                if i > 0 {
                    out.push_str(op);
                }
                out.push_str(clause);
            }
            out
        })
    }

    /// Chains of the clauses the shortcut takes, with variations it must refuse (other
    /// operators, numbers, lists, nesting) mixed in.
    fn shortcut_soup() -> impl Strategy<Value = String> {
        let path = prop::sample::select(vec![
            "normandy.channel",
            "normandy.recipe.id",
            "env.version",
            "a",
            "a.b.c.d",
            "in",
            "normandy.userId",
            "x.y",
            "normandy['x']",
            ".rel",
            "true",
        ]);
        let text = prop::sample::select(vec![
            "'release'",
            "\"beta\"",
            "''",
            "'it\\'s'",
            "'\\\\'",
            "'é'",
            "1",
            "true",
            "'",
        ]);
        let number = prop::sample::select(vec!["0", "1", "-1", "0.5", "40000", "'0'", "-0", "1e3"]);
        let compare = prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">=", "in", "+"]);
        let clause = prop_oneof![
            (
                path.clone(),
                prop::sample::select(vec!["==", "!=", "<"]),
                text.clone()
            )
                .prop_map(|(p, op, t)| format!("{p} {op} {t}")),
            (path.clone(), prop::collection::vec(text.clone(), 0..4))
                .prop_map(|(p, ts)| format!("{p} in [{}]", ts.join(", "))),
            (path.clone(), text, compare, number.clone())
                .prop_map(|(p, v, c, n)| format!("{p}|versionCompare({v}) {c} {n}")),
            (prop::collection::vec(path.clone(), 0..6), number)
                .prop_map(|(ps, r)| format!("[{}]|stableSample({r})", ps.join(","))),
            path.prop_map(str::to_owned),
        ];
        let term = (clause, prop::sample::select(vec![false, false, true]))
            .prop_map(|(c, paren)| if paren { format!("({c})") } else { c });
        prop::collection::vec(
            (
                term,
                prop::sample::select(vec!["&&", "&&", "&& ", "||", "and"]),
            ),
            1..6,
        )
        .prop_map(|parts| {
            let mut out = String::new();
            for (i, (term, op)) in parts.iter().enumerate() {
                if i > 0 {
                    out.push_str(op);
                }
                out.push_str(term);
            }
            out
        })
    }

    /// Chains of the clauses the shortcut takes, and only those.
    fn shortcut_chains() -> impl Strategy<Value = String> {
        let path = prop::sample::select(vec![
            "normandy.channel",
            "normandy.recipe.id",
            "env.version",
            "a",
            "a.b.c.d",
            "normandy.userId",
            "x.y",
            "_y1.z2",
        ]);
        let text = prop::sample::select(vec![
            "'release'",
            "\"beta\"",
            "''",
            "'it\\'s'",
            "'é'",
            "'100.!'",
            "'1.0a'",
        ]);
        let clause = prop_oneof![
            (
                path.clone(),
                prop::sample::select(vec!["==", "!="]),
                text.clone()
            )
                .prop_map(|(p, op, t)| format!("{p} {op} {t}")),
            (path.clone(), prop::collection::vec(text.clone(), 1..5))
                .prop_map(|(p, ts)| format!("{p} in [{}]", ts.join(", "))),
            (
                path.clone(),
                text,
                prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="]),
                prop::sample::select(vec!["0", "1", "-1", "-0", "7"]),
            )
                .prop_map(|(p, v, c, n)| format!("{p}|versionCompare({v}) {c} {n}")),
            (
                prop::collection::vec(path, 1..5),
                prop::sample::select(vec!["0", "1", "0.5", "-1", "2", "0.05", "10.25"]),
            )
                .prop_map(|(ps, r)| format!("[{}]|stableSample({r})", ps.join(", "))),
        ];
        let term =
            (clause, any::<bool>()).prop_map(|(c, paren)| if paren { format!("({c})") } else { c });
        prop::collection::vec(term, 1..7).prop_map(|terms| terms.join(" && "))
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            (-5i64..5).prop_map(serde_json::Value::from),
            prop::sample::select(vec![
                "", "s", "x", "1", "abc", "true", "1.0a", "128.0.1", "99", "100.1", "0100"
            ])
            .prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::vec(
                    (prop::sample::select(vec!["x", "y", "p", "q", "s"]), inner),
                    0..4
                )
                .prop_map(|kv| serde_json::Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    fn context() -> impl Strategy<Value = Value> {
        prop::collection::vec(
            (
                prop::sample::select(vec!["a", "o", "arr", "n", "z", "s", "x"]),
                json_value(),
            ),
            0..6,
        )
        .prop_map(|kv| {
            Value::from_json(&serde_json::Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            ))
        })
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_arbitrary_text(src in "\\PC{0,64}") {
            let _ = Expression::parse(&src);
        }

        #[test]
        fn parser_never_panics_on_token_soup(src in token_soup()) {
            let _ = Expression::parse(&src);
        }

        #[test]
        fn specialising_changes_no_result(src in clause_soup(), ctx in context()) {
            assert_specialising_changes_nothing(&src, &ctx, &prefs());
        }

        #[test]
        fn filters_classified_as_reading_the_recipe_id_read_nothing_else(
            src in prop::collection::vec(prop::sample::select(RECIPE_TOKENS), 1..16)
                .prop_map(|t| t.join(""))
        ) {
            assert_recipe_id_is_enough(&src);
        }

        #[test]
        fn the_shortcut_writes_the_general_program(src in shortcut_soup()) {
            assert_shortcut_is_exact(&src);
        }

        #[test]
        fn the_shortcut_takes_every_chain_of_its_clauses(src in shortcut_chains()) {
            assert!(assert_shortcut_is_exact(&src), "not taken: {src}");
        }

        #[test]
        fn the_shortcut_takes_only_what_parses_the_same(
            src in shortcut_chains(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec![
                " ", "\t", "\n", "\u{a0}", "é", "$", "_", "1", "0.", ".5", "-", "+", "=", "!", "<",
                ">", "&", "|", "'", "\"", "\\", "[", "]", "(", ")", ",", ".", "in", "true", "#",
                "x", "e3", "intersect", "?", ":", "{", "}",
            ])), 1..4),
        ) {
            let mut src = src;
            for (at, insert) in edits {
                let mut at = at.index(src.len() + 1);
                while !src.is_char_boundary(at) {
                    at -= 1;
                }
                src.insert_str(at, insert);
            }
            assert_shortcut_is_exact(&src);
        }

        #[test]
        fn eval_never_panics(src in token_soup(), ctx in context()) {
            if let Ok(e) = Expression::parse(&src) {
                let _ = e.eval(&ctx, &prefs());
            }
        }
    }
}
