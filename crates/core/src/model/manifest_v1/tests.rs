use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::diagnostic::Severity;

const SHA1: &str = "sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099";
const SHA256: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// The example manifest from the document.
const DOC_EXAMPLE: &str = r#"{
  "version": 1,
  "experiments": [
    {
      "id": "da9d7f4f-f3f9-4f81-bacd-6f0626ffa360",
      "xpiURL": "https://experiments.mozilla.org/foo.xpi",
      "xpiHash": "sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099",
      "startTime": 1393000000,
      "endTime": 1394000000,
      "appName": ["Firefox", "Fennec"],
      "minVersion": "28",
      "maxVersion": "30",
      "os": ["windows", "linux", "osx"],
      "jsfilter": "function filter(context) { return context.healthReportEnabled; }"
    }
  ]
}"#;

/// One rendered diagnostic per line, `line:col: severity: path: message` without the file.
fn rendered(parsed: &Parsed<Manifest>) -> Vec<String> {
    parsed
        .diagnostics
        .iter()
        .map(|d| {
            assert_eq!(d.file, "m.json");
            format!(
                "{}:{}: {}: {}",
                d.position.line, d.position.column, d.severity, d.path
            )
        })
        .collect()
}

fn manifest_with(entry: serde_json::Value) -> String {
    serde_json::to_string_pretty(&json!({"version": 1, "experiments": [entry]})).unwrap_or_default()
}

fn valid_entry() -> serde_json::Value {
    json!({"id": "e", "xpiURL": "https://x/e.xpi", "xpiHash": SHA1})
}

#[test]
fn document_example_parses_cleanly() {
    let parsed = parse("m.json", DOC_EXAMPLE);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let manifest = parsed.value.unwrap();
    assert!(manifest.is_supported());
    assert!(manifest.rejected.is_empty());
    let e = &manifest.experiments[0];
    assert_eq!(e.id, "da9d7f4f-f3f9-4f81-bacd-6f0626ffa360");
    assert_eq!(e.xpi_url, "https://experiments.mozilla.org/foo.xpi");
    assert_eq!(e.xpi_hash.algorithm, HashAlgorithm::Sha1);
    assert_eq!(e.xpi_hash.hex, "cb1eb32b89d86d78b7326f416cf404548c5e0099");
    assert_eq!(e.start_time, Some(1_393_000_000));
    assert_eq!(e.end_time, Some(1_394_000_000));
    assert_eq!(e.max_active_seconds, None);
    assert_eq!(
        e.app_name.as_deref(),
        Some(&["Firefox".to_owned(), "Fennec".to_owned()][..])
    );
    assert_eq!(e.min_version.as_deref(), Some("28"));
    assert_eq!(e.max_version.as_deref(), Some("30"));
    assert_eq!(e.os.as_ref().map(Vec::len), Some(3));
    assert!(
        e.jsfilter
            .as_deref()
            .unwrap()
            .starts_with("function filter")
    );
    assert_eq!(manifest.experiment(&e.id), Some(e));
}

#[test]
fn every_field_is_typed() {
    let entry = json!({
        "id": "all",
        "xpiURL": "https://x/all.xpi",
        "xpiHash": SHA256,
        "startTime": 1,
        "maxStartTime": 2,
        "endTime": 3.0,
        "maxActiveSeconds": 1e3,
        "appName": ["Firefox"],
        "minVersion": "28.0a1",
        "maxVersion": "30.*",
        "version": ["29.0"],
        "minBuildID": "20140101",
        "maxBuildID": "20150101",
        "buildIDs": ["20140601"],
        "os": ["WINNT"],
        "channel": ["nightly", "aurora"],
        "locale": ["en-US"],
        "sample": 0.25,
        "disabled": false,
        "frozen": true,
        "jsfilter": "function filter(c) { return true; }"
    });
    let parsed = parse("m.json", &manifest_with(entry));
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let e = parsed.value.unwrap().experiments.remove(0);
    let expected = ManifestExperiment {
        start_time: Some(1),
        max_start_time: Some(2),
        end_time: Some(3),
        max_active_seconds: Some(1000),
        app_name: Some(vec!["Firefox".into()]),
        min_version: Some("28.0a1".into()),
        max_version: Some("30.*".into()),
        version: Some(vec!["29.0".into()]),
        min_build_id: Some("20140101".into()),
        max_build_id: Some("20150101".into()),
        build_ids: Some(vec!["20140601".into()]),
        os: Some(vec!["WINNT".into()]),
        channel: Some(vec!["nightly".into(), "aurora".into()]),
        locale: Some(vec!["en-US".into()]),
        sample: Some(0.25),
        disabled: Some(false),
        frozen: Some(true),
        jsfilter: Some("function filter(c) { return true; }".into()),
        ..ManifestExperiment::new(
            "all",
            "https://x/all.xpi",
            XpiHash {
                algorithm: HashAlgorithm::Sha256,
                hex: SHA256.trim_start_matches("sha256:").into(),
            },
        )
    };
    assert_eq!(e, expected);
}

#[test]
fn xpi_hash_formats() {
    let upper = "sha1:CB1EB32B89D86D78B7326F416CF404548C5E0099";
    let hash = XpiHash::parse(upper).unwrap();
    assert_eq!(hash.to_string(), upper);
    assert!(hash.matches_hex("cb1eb32b89d86d78b7326f416cf404548c5e0099"));
    assert!(!hash.matches_hex("cb1eb32b89d86d78b7326f416cf404548c5e0098"));
    assert_eq!(
        XpiHash::parse(SHA256).unwrap().algorithm,
        HashAlgorithm::Sha256
    );
    let cases: &[(&str, XpiHashError)] = &[
        ("cb1eb32b", XpiHashError::MissingColon),
        (
            "md5:cb1eb32b",
            XpiHashError::UnsupportedAlgorithm("md5".into()),
        ),
        (
            "SHA1:cb1eb32b89d86d78b7326f416cf404548c5e0099",
            XpiHashError::UnsupportedAlgorithm("SHA1".into()),
        ),
        (
            "sha1:cb1eb32b",
            XpiHashError::BadDigest {
                algorithm: "sha1",
                expected: 40,
                hex: "cb1eb32b".into(),
            },
        ),
        (
            // A SHA-1 length digest labelled sha256.
            "sha256:cb1eb32b89d86d78b7326f416cf404548c5e0099",
            XpiHashError::BadDigest {
                algorithm: "sha256",
                expected: 64,
                hex: "cb1eb32b89d86d78b7326f416cf404548c5e0099".into(),
            },
        ),
        (
            "sha1:cb1eb32b89d86d78b7326f416cf404548c5e009g",
            XpiHashError::BadDigest {
                algorithm: "sha1",
                expected: 40,
                hex: "cb1eb32b89d86d78b7326f416cf404548c5e009g".into(),
            },
        ),
    ];
    for (text, error) in cases {
        assert_eq!(XpiHash::parse(text).as_ref(), Err(error), "{text}");
    }
}

#[test]
fn syntax_errors_carry_serde_positions() {
    let cases: &[(&str, &str)] = &[
        ("", "1:1"),
        ("{", "1:1"),
        ("{\n  \"version\": 1,\n  \"experiments\": [,]\n}", "3:19"),
        ("{\"version\": 1} x", "1:16"),
        // Columns count characters, not bytes.
        ("{\"é\": 1,,}", "1:9"),
    ];
    for (text, at) in cases {
        let parsed = parse("m.json", text);
        assert!(parsed.value.is_none(), "{text}");
        let [d] = &parsed.diagnostics[..] else {
            panic!("{:?}", parsed.diagnostics)
        };
        assert_eq!(d.severity, Severity::Error);
        assert_eq!(d.path, FieldPath::root());
        assert!(d.message.starts_with("invalid JSON: "), "{}", d.message);
        assert_eq!(
            format!("{}:{}", d.position.line, d.position.column),
            *at,
            "{text:?}: {}",
            d.message
        );
    }
}

#[test]
fn document_level_errors() {
    let parsed = parse("m.json", "[1, 2]");
    assert!(parsed.value.is_none());
    assert_eq!(rendered(&parsed), ["1:1: error: (root)"]);
    assert_eq!(
        parsed.diagnostics[0].message,
        "the manifest must be a JSON object, not an array"
    );

    let parsed = parse("m.json", "{\"version\": 1,\n \"experiments\": {}}");
    assert!(parsed.value.is_none());
    assert_eq!(rendered(&parsed), ["2:17: error: experiments"]);

    // No experiments at all is a valid, empty manifest.
    let parsed = parse("m.json", "{\"version\": 1}");
    assert!(parsed.diagnostics.is_empty());
    assert_eq!(parsed.value.unwrap().experiments, []);

    let big = " ".repeat(MAX_MANIFEST_BYTES + 1);
    let parsed = parse("m.json", &big);
    assert!(parsed.value.is_none());
    assert_eq!(rendered(&parsed), ["1:1: error: (root)"]);
}

#[test]
fn unsupported_version_is_an_error_but_keeps_the_manifest() {
    let text = "{\n  \"version\": 2,\n  \"experiments\": [{\"id\": \"e\", \"xpiURL\": \"u\", \"xpiHash\": \"sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099\"}]\n}";
    let parsed = parse("m.json", text);
    assert_eq!(rendered(&parsed), ["2:14: error: version"]);
    assert!(
        parsed.diagnostics[0]
            .message
            .contains("unsupported manifest version 2")
    );
    let manifest = parsed.value.unwrap();
    assert!(!manifest.is_supported());
    assert_eq!(manifest.experiments.len(), 1);

    for (version, supported) in [
        ("1", true),
        ("1.0", true),
        ("\"1\"", false),
        ("null", false),
    ] {
        let parsed = parse("m.json", &format!("{{\"version\": {version}}}"));
        assert_eq!(
            parsed.value.as_ref().unwrap().is_supported(),
            supported,
            "{version}"
        );
        assert_eq!(parsed.has_errors(), !supported, "{version}");
    }

    let parsed = parse("m.json", "{\"experiments\": []}");
    assert_eq!(rendered(&parsed), ["1:1: error: (root)"]);
    assert!(
        parsed.diagnostics[0]
            .message
            .contains("missing required field `version`")
    );
    assert!(!parsed.value.unwrap().is_supported());
}

/// Each invalid entry is rejected on its own, and every diagnostic points at the field.
#[test]
fn entry_diagnostics_have_exact_positions() {
    let text = r#"{
  "version": 1,
  "comment": "hi",
  "experiments": [
    {"id": "ok", "xpiURL": "https://x/ok.xpi", "xpiHash": "sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099", "name": "Ok"},
    {"xpiURL": "https://x/a.xpi", "xpiHash": "sha1:1234"},
    {"id": "b", "xpiURL": 5, "xpiHash": "sha256:cb1eb32b89d86d78b7326f416cf404548c5e0099",
     "startTime": -1, "endTime": 1.5, "maxActiveSeconds": "10"},
    {"id": "c", "xpiURL": "u", "xpiHash": "sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099",
     "sample": 1.5, "os": ["WINNT", 42], "disabled": "yes", "minVersion": 28},
    "not an object",
    {"id": "ok", "xpiURL": "u2", "xpiHash": "sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099"},
    {"id": "", "xpiURL": "", "xpiHash": null},
    {"id": "w", "xpiURL": "u", "xpiHash": "sha1:cb1eb32b89d86d78b7326f416cf404548c5e0099",
     "channel": [], "minBuildID": "", "startTime": 10, "endTime": 10}
  ]
}"#;
    let parsed = parse("m.json", text);
    let expected = [
        (
            "3:14: warning: comment",
            "unknown key `comment` (kept, but it has no meaning in manifest version 1)",
        ),
        (
            "5:116: warning: experiments[0].name",
            "unknown key `name` (kept, but ignored by evaluation)",
        ),
        (
            "6:5: error: experiments[1].id",
            "missing required field `id`",
        ),
        (
            "6:46: error: experiments[1].xpiHash",
            "expected `sha1:<40 hex>` or `sha256:<64 hex>`: a sha1 digest must be 40 hex digits, got `1234`",
        ),
        (
            "7:27: error: experiments[2].xpiURL",
            "`xpiURL` must be a string, not a number",
        ),
        (
            "7:41: error: experiments[2].xpiHash",
            "expected `sha1:<40 hex>` or `sha256:<64 hex>`: a sha256 digest must be 64 hex digits, got `cb1eb32b89d86d78b7326f416cf404548c5e0099`",
        ),
        (
            "8:19: error: experiments[2].startTime",
            "`startTime` must be a non-negative integer number of seconds (at most 9007199254740991), got -1",
        ),
        (
            "8:34: error: experiments[2].endTime",
            "`endTime` must be a non-negative integer number of seconds (at most 9007199254740991), got 1.5",
        ),
        (
            "8:59: error: experiments[2].maxActiveSeconds",
            "`maxActiveSeconds` must be an integer number of seconds, not a string",
        ),
        (
            "10:16: error: experiments[3].sample",
            "`sample` must be between 0 and 1, got 1.5",
        ),
        (
            "10:37: error: experiments[3].os[1]",
            "`os` must hold only strings, not a number",
        ),
        (
            "10:54: error: experiments[3].disabled",
            "`disabled` must be a boolean, not a string",
        ),
        (
            "10:75: error: experiments[3].minVersion",
            "`minVersion` must be a string, not a number",
        ),
        (
            "11:5: error: experiments[4]",
            "an experiment must be a JSON object, not a string",
        ),
        (
            "12:12: error: experiments[5].id",
            "duplicate experiment id `ok`: this entry is rejected, the first one is kept",
        ),
        ("13:12: error: experiments[6].id", "`id` must not be empty"),
        (
            "13:26: error: experiments[6].xpiURL",
            "`xpiURL` must not be empty",
        ),
        (
            "13:41: error: experiments[6].xpiHash",
            "`xpiHash` must be a string, not null",
        ),
        (
            "15:17: warning: experiments[7].channel",
            "`channel` is an empty list, so the experiment applies to no client",
        ),
        (
            "15:35: warning: experiments[7].minBuildID",
            "`minBuildID` is empty and is treated as absent",
        ),
        (
            "15:67: warning: experiments[7].endTime",
            "`endTime` (10) is not after `startTime` (10): the experiment can never run",
        ),
    ];
    let actual: Vec<(String, &str)> = rendered(&parsed)
        .into_iter()
        .zip(parsed.diagnostics.iter().map(|d| d.message.as_str()))
        .collect();
    let expected: Vec<(String, &str)> = expected
        .iter()
        .map(|(at, m)| ((*at).to_owned(), *m))
        .collect();
    assert_eq!(actual, expected);
    let manifest = parsed.value.unwrap();
    let ids: Vec<&str> = manifest.experiments.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["ok", "w"]);
    // Each rejected entry keeps its place, its id when it has one, and its first error (in
    // source order) with the field path relative to the entry.
    let rejected: Vec<(Option<&str>, usize, String, &str)> = manifest
        .rejected
        .iter()
        .map(|r| {
            (
                r.id.as_deref(),
                r.index,
                format!("{}:{}", r.position.line, r.position.column),
                r.message.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (None, 1, "6:5".to_owned(), "id: missing required field `id`"),
            (
                Some("b"),
                2,
                "7:5".to_owned(),
                "xpiURL: `xpiURL` must be a string, not a number"
            ),
            (
                Some("c"),
                3,
                "9:5".to_owned(),
                "sample: `sample` must be between 0 and 1, got 1.5"
            ),
            (
                None,
                4,
                "11:5".to_owned(),
                "an experiment must be a JSON object, not a string"
            ),
            (
                Some("ok"),
                5,
                "12:5".to_owned(),
                "id: duplicate experiment id `ok`: this entry is rejected, the first one is kept"
            ),
            (None, 6, "13:5".to_owned(), "id: `id` must not be empty"),
        ]
    );
    assert!(manifest.rejected.iter().all(|r| r.file == "m.json"));
    assert_eq!(
        manifest.experiments[0].extra.get("name"),
        Some(&json!("Ok"))
    );
    assert_eq!(manifest.extra.get("comment"), Some(&json!("hi")));
    assert_eq!(manifest.experiments[1].channel, Some(vec![]));
    assert_eq!(manifest.experiments[1].min_build_id.as_deref(), Some(""));
}

#[test]
fn time_values() {
    let cases: &[(serde_json::Value, Option<u64>)] = &[
        (json!(0), Some(0)),
        (json!(1_393_000_000), Some(1_393_000_000)),
        (json!(1e9), Some(1_000_000_000)),
        (
            json!(9_007_199_254_740_991_u64),
            Some(9_007_199_254_740_991),
        ),
        (json!(9_007_199_254_740_992_u64), None),
        (json!(1e300), None),
        (json!(-0.0), Some(0)),
        (json!(0.5), None),
        (json!(true), None),
    ];
    for (value, expected) in cases {
        let mut entry = valid_entry();
        entry["startTime"] = value.clone();
        let parsed = parse("m.json", &manifest_with(entry));
        let manifest = parsed.value.unwrap();
        assert_eq!(
            manifest.experiments.first().and_then(|e| e.start_time),
            *expected,
            "{value}"
        );
        assert_eq!(parsed.diagnostics.is_empty(), expected.is_some(), "{value}");
    }
}

#[test]
fn sample_bounds_are_inclusive() {
    for (sample, ok) in [
        (json!(0), true),
        (json!(0.0), true),
        (json!(1), true),
        (json!(0.5), true),
        (json!(-0.0001), false),
        (json!(1.0001), false),
        (json!("0.5"), false),
    ] {
        let mut entry = valid_entry();
        entry["sample"] = sample.clone();
        let parsed = parse("m.json", &manifest_with(entry));
        assert_eq!(!parsed.has_errors(), ok, "{sample}");
    }
}

#[test]
fn round_trip() {
    let text = r#"{
  "version": 1,
  "note": {"kept": [1, 2]},
  "experiments": [
    {"id": "a", "xpiURL": "https://x/a.xpi", "xpiHash": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
     "startTime": 1, "maxStartTime": 2, "endTime": 3, "maxActiveSeconds": 4,
     "appName": ["Firefox"], "minVersion": "28", "maxVersion": "30", "version": ["29"],
     "minBuildID": "1", "maxBuildID": "2", "buildIDs": ["1"], "os": ["Linux"], "channel": ["beta"],
     "locale": ["de"], "sample": 0.125, "disabled": false, "frozen": true,
     "jsfilter": "function filter(c) { return !!c; }", "homepageURL": "https://x/", "name": "A"},
    {"id": "b", "xpiURL": "https://x/b.xpi", "xpiHash": "sha1:CB1EB32B89D86D78B7326F416CF404548C5E0099"}
  ]
}"#;
    let first = parse("m.json", text);
    let manifest = first.value.clone().unwrap();
    let written = to_json(&manifest);
    let second = parse("m.json", &written);
    // The same problems (unknown keys), reported against the rewritten text.
    let problems = |parsed: &Parsed<Manifest>| {
        let mut problems: Vec<String> = parsed
            .diagnostics
            .iter()
            .map(|d| format!("{}: {}: {}", d.severity, d.path, d.message))
            .collect();
        problems.sort();
        problems
    };
    assert_eq!(problems(&second), problems(&first));
    assert_eq!(first.diagnostics.len(), 3);
    assert_eq!(second.value.as_ref(), Some(&manifest));
    // Writing is stable, and field names and values match the source document.
    assert_eq!(to_json(second.value.as_ref().unwrap()), written);
    let source: serde_json::Value = serde_json::from_str(text).unwrap();
    let rewritten: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(source, rewritten);
    assert!(
        written.contains("\n  \"experiments\": [\n    {\n      \"id\": \"a\",\n      \"xpiURL\"")
    );
}

#[test]
fn round_trip_of_a_built_manifest() {
    let mut experiment =
        ManifestExperiment::new("x", "https://x/x.xpi", XpiHash::parse(SHA1).unwrap());
    experiment.sample = Some(1.0);
    experiment.build_ids = Some(vec![]);
    let manifest = Manifest {
        version: Some(json!(1)),
        experiments: vec![experiment],
        rejected: Vec::new(),
        extra: Map::new(),
    };
    let parsed = parse("m.json", &to_json(&manifest));
    assert!(!parsed.has_errors());
    assert_eq!(parsed.value, Some(manifest));
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9:._-]{0,12}".prop_map(serde_json::Value::String),
        Just(json!(SHA1)),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("id".to_owned()),
                        Just("xpiURL".to_owned()),
                        Just("xpiHash".to_owned()),
                        Just("version".to_owned()),
                        Just("experiments".to_owned()),
                        Just("sample".to_owned()),
                        Just("startTime".to_owned()),
                        Just("os".to_owned()),
                        "[a-z]{1,6}"
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|pairs| serde_json::Value::Object(pairs.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn parse_never_panics_on_text(text in "\\PC{0,200}") {
        let parsed = parse("m.json", &text);
        prop_assert!(parsed.value.is_some() || parsed.has_errors());
    }

    #[test]
    fn parse_never_panics_on_json(root in arb_json(), entries in prop::collection::vec(arb_json(), 0..4)) {
        let as_root = serde_json::to_string(&root).unwrap();
        let parsed = parse("m.json", &as_root);
        prop_assert!(parsed.value.is_some() || parsed.has_errors());
        let manifest = serde_json::to_string_pretty(&json!({"version": 1, "experiments": entries})).unwrap();
        let parsed = parse("m.json", &manifest);
        let value = parsed.value.unwrap();
        // Whatever survives validation is written back and read again unchanged.
        let again = parse("m.json", &to_json(&value));
        prop_assert!(!again.has_errors());
        let mut expected = value.clone();
        expected.rejected = Vec::new();
        // Every entry is either kept or rejected, each once, in its place.
        let mut places: Vec<usize> = value.rejected.iter().map(|r| r.index).collect();
        places.sort_unstable();
        places.dedup();
        prop_assert_eq!(places.len(), value.rejected.len());
        prop_assert_eq!(value.rejected.len() + value.experiments.len(), entries.len());
        prop_assert_eq!(again.value, Some(expected));
    }
}
