//! Snapshots: what each client document holds, that clients accept the signed manifest, and
//! that invalid items are left out with a reason while the rest is published.

use std::io::Read as _;

use crate::common::*;
use flightdeck_client::manifest::{self, LastAccepted, RecipeSignatureCheck, VerifyPolicy};
use flightdeck_client::signature::{PublicKey, TrustedKeys};
use flightdeck_server::publish::{DocumentKind, ItemKind, PublishError, Snapshot, content_hash};
use serde_json::{Value, json};

fn document_json(snapshot: &Snapshot, kind: DocumentKind) -> Value {
    serde_json::from_slice(snapshot.document(kind).body()).expect("JSON document")
}

fn trusted(key: &flightdeck_client::signature::SigningKey) -> TrustedKeys {
    let mut trusted = TrustedKeys::new();
    trusted.insert(key.public_key().clone());
    trusted
}

#[test]
fn the_unified_manifest_verifies_with_the_published_key() {
    let snapshot = snapshot("production", &sample_items(), 17);
    let key = key();
    let loaded = manifest::load("manifest", snapshot.manifest().body()).expect("loads");
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics());
    let verified = manifest::verify(
        loaded,
        &trusted(&key),
        None,
        &VerifyPolicy {
            require_signature: true,
            recipe_signatures: RecipeSignatureCheck::Always,
            freshness: None,
        },
    )
    .expect("verifies");
    assert_eq!(verified.key_id(), Some(key.key_id()));
    assert!(
        verified.bad_recipes().is_empty(),
        "{:?}",
        verified.bad_recipes()
    );
    let accepted = verified.accepted().expect("accepted");
    assert_eq!(accepted.serial, 17);

    // The key list the server publishes is what a client trusts.
    let keys = document_json(&snapshot, DocumentKind::SigningKeys);
    let pem = keys[0]["publicKeyPem"].as_str().expect("PEM");
    let mut from_list = TrustedKeys::new();
    from_list.insert(PublicKey::from_spki_pem("list", pem).expect("public key"));
    assert_eq!(keys[0]["keyId"], json!(key.key_id().to_string()));
    assert_eq!(keys[0]["active"], json!(true));
    assert_eq!(keys[0]["createdAt"], json!("2026-11-01T00:00:00Z"));
    let again = manifest::load("manifest", snapshot.manifest().body()).expect("loads");
    manifest::verify(again, &from_list, None, &VerifyPolicy::default())
        .expect("verifies with the listed key");

    // A re-fetch of the same publication passes the replay check; another key does not verify.
    let again = manifest::load("manifest", snapshot.manifest().body()).expect("loads");
    let last = LastAccepted {
        serial: accepted.serial,
        content_sha256: accepted.content_sha256,
    };
    manifest::verify(again, &trusted(&key), Some(&last), &VerifyPolicy::default())
        .expect("same publication");
    let again = manifest::load("manifest", snapshot.manifest().body()).expect("loads");
    let error = manifest::verify(
        again,
        &trusted(&second_key()),
        None,
        &VerifyPolicy::default(),
    )
    .expect_err("untrusted key");
    assert_eq!(error.code(), "bad-signature");
}

#[test]
fn normandy_records_are_minimal_recipes_with_compiled_filters() {
    let snapshot = snapshot("production", &sample_items(), 1);
    let records = document_json(&snapshot, DocumentKind::RecipesSigned);
    let records = records.as_array().expect("a list of records");
    assert_eq!(records.len(), 2);
    let recipe = &records[0]["recipe"];
    assert_eq!(recipe["id"], json!(1));
    assert_eq!(
        recipe["revision_id"],
        json!("10"),
        "a string, as Normandy writes it"
    );
    assert_eq!(recipe["name"], json!("Roll out autoplay"));
    assert_eq!(recipe["action"], json!("preference-rollout"));
    assert_eq!(recipe["arguments"]["slug"], json!("autoplay"));
    let filter = recipe["filter_expression"].as_str().expect("filter");
    assert!(
        filter.contains("normandy.channel in [\"release\",\"beta\"]")
            && filter.contains("normandy.locale == 'en-US'"),
        "{filter}"
    );
    let capabilities = recipe["capabilities"].as_array().expect("capabilities");
    assert!(capabilities.contains(&json!("action.preference-rollout")));
    let members: Vec<&str> = recipe
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    for member in &members {
        assert!(
            [
                "id",
                "name",
                "revision_id",
                "action",
                "arguments",
                "filter_expression",
                "capabilities"
            ]
            .contains(member),
            "unexpected member {member}"
        );
    }
    // Each record verifies on its own, as Normandy clients check them.
    let key = key();
    for record in records {
        let signature = &record["signature"];
        assert_eq!(signature["x5u"], Value::Null);
        assert_eq!(signature["keyId"], json!(key.key_id().to_string()));
        assert_eq!(signature["timestamp"], json!("2026-11-21T10:00:00Z"));
        assert_eq!(
            signature["public_key"],
            json!(key.public_key().to_base64_der())
        );
        let bytes = flightdeck_client::canonical::to_vec(&record["recipe"]);
        key.public_key()
            .verify(&bytes, signature["signature"].as_str().expect("signature"))
            .expect("record signature verifies");
    }
    // The manifest carries the same records.
    let unified = document_json(&snapshot, DocumentKind::Manifest);
    assert_eq!(unified["normandy"], json!(records));
    assert_eq!(unified["serial"], json!(1));
    assert_eq!(unified["publishedAt"], json!("2026-11-21T10:00:00Z"));
}

#[test]
fn manifest_v1_flights_and_flags_are_published() {
    let items = vec![
        manifest_experiment(3, "old-tab"),
        manifest_experiment(8, "new-tab"),
        flight(4, "tab-center"),
        target_group(5, "beta users"),
        flag(6, "new-checkout", "beta users"),
        rollout(1, "autoplay"),
    ];
    let snapshot = snapshot("production", &items, 2);
    assert!(snapshot.skipped().is_empty(), "{:?}", snapshot.skipped());

    let experiments = document_json(&snapshot, DocumentKind::Experiments);
    assert_eq!(experiments["version"], json!(1));
    let ids: Vec<&Value> = experiments["experiments"]
        .as_array()
        .expect("experiments")
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(ids, [&json!("old-tab"), &json!("new-tab")], "item order");
    let unified = document_json(&snapshot, DocumentKind::Manifest);
    assert_eq!(unified["experiments"], experiments);

    let flights = document_json(&snapshot, DocumentKind::Flights);
    assert_eq!(flights["flights"][0]["studyname"], json!("tab-center"));
    let parsed = flightdeck_core::model::testpilot::parse(
        "flights",
        std::str::from_utf8(snapshot.document(DocumentKind::Flights).body()).unwrap(),
    );
    assert!(!parsed.has_errors(), "{:?}", parsed.diagnostics);

    let compiled = snapshot.compiled();
    assert_eq!(compiled.recipes.recipes.len(), 1);
    assert_eq!(compiled.experiments.experiments.len(), 2);
    assert_eq!(compiled.flights.flights.len(), 1);
    assert_eq!(compiled.flags.experiments.len(), 1);
    assert_eq!(compiled.flags.experiments[0].flag, "new-checkout");
    assert_eq!(compiled.flags.target_groups.len(), 1);
    assert_eq!(compiled.flags.target_groups[0].name, "beta users");
}

#[test]
fn an_empty_publication_has_every_document() {
    let snapshot = snapshot("staging", &[], 0);
    let unified = document_json(&snapshot, DocumentKind::Manifest);
    assert_eq!(unified["normandy"], json!([]));
    assert_eq!(
        unified["experiments"],
        json!({"version": 1, "experiments": []}),
        "always present, so clients see the last experiment go"
    );
    assert_eq!(
        document_json(&snapshot, DocumentKind::RecipesSigned),
        json!([])
    );
    assert_eq!(
        document_json(&snapshot, DocumentKind::Flights),
        json!({"flights": []})
    );
    let loaded = manifest::load("manifest", snapshot.manifest().body()).expect("loads");
    manifest::verify(loaded, &trusted(&key()), None, &VerifyPolicy::default()).expect("verifies");
}

#[test]
fn invalid_items_are_skipped_with_a_reason() {
    let mut bad_arguments = rollout(20, "broken");
    bad_arguments.data["arguments"] = json!({"slug": "broken"});
    let duplicate_slug = rollout(21, "autoplay");
    let negative_id = rollout(-5, "negative");
    let mut no_name = rollout(22, "nameless");
    no_name.data.as_object_mut().unwrap().remove("name");
    let mut bad_hash = manifest_experiment(30, "bad-hash");
    bad_hash.data["xpiHash"] = json!("md5:zz");
    let duplicate_experiment = manifest_experiment(31, "old-tab");
    let mut endless = flight(40, "endless");
    endless.data.as_object_mut().unwrap().remove("endBy");
    let orphan_flag = flag(50, "orphan", "no such group");
    let mut bad_group = target_group(51, "broken group");
    bad_group.data["conditions"] = json!([{"operator": "no-such-operator", "property": "x"}]);
    let not_an_object = item(60, 600, ItemKind::Normandy, json!(["a", "list"]));

    let mut items = sample_items();
    items.extend([
        bad_arguments,
        duplicate_slug,
        negative_id,
        no_name,
        bad_hash,
        duplicate_experiment,
        endless,
        orphan_flag,
        bad_group,
        not_an_object,
    ]);
    let snapshot = snapshot("production", &items, 3);

    let skipped: Vec<(i64, ItemKind, &str)> = snapshot
        .skipped()
        .iter()
        .map(|s| (s.recipe_id, s.kind, s.reason.as_str()))
        .collect();
    let ids: Vec<i64> = skipped.iter().map(|s| s.0).collect();
    assert_eq!(
        ids,
        [20, 21, -5, 22, 30, 31, 40, 50, 51, 60],
        "every bad item, in item order: {skipped:#?}"
    );
    for (id, _, reason) in &skipped {
        assert!(!reason.is_empty(), "item {id} has a reason");
        assert!(
            !reason.contains("approved_revision"),
            "paths are relative to the item's data: {reason}"
        );
    }
    let reason_of = |id: i64| skipped.iter().find(|s| s.0 == id).unwrap().2;
    assert!(reason_of(20).starts_with("arguments"), "{}", reason_of(20));
    assert!(reason_of(21).contains("slug"), "{}", reason_of(21));
    assert!(reason_of(22).contains("name"), "{}", reason_of(22));
    assert!(reason_of(30).starts_with("xpiHash"), "{}", reason_of(30));
    assert!(reason_of(40).contains("endBy"), "{}", reason_of(40));
    assert!(reason_of(50).contains("no such group"), "{}", reason_of(50));
    assert!(reason_of(60).contains("JSON object"), "{}", reason_of(60));
    assert_eq!(snapshot.skipped()[9].revision_id, 600);

    // The valid items are all published, and the manifest still verifies.
    let records = document_json(&snapshot, DocumentKind::RecipesSigned);
    let published: Vec<&Value> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["recipe"]["id"])
        .collect();
    assert_eq!(published, [&json!(1), &json!(2)]);
    let experiments = document_json(&snapshot, DocumentKind::Experiments);
    assert_eq!(experiments["experiments"].as_array().unwrap().len(), 1);
    assert_eq!(snapshot.compiled().flights.flights.len(), 1);
    assert_eq!(snapshot.compiled().flags.experiments.len(), 1);
    assert_eq!(snapshot.compiled().flags.target_groups.len(), 1);
    let loaded = manifest::load("manifest", snapshot.manifest().body()).expect("loads");
    manifest::verify(loaded, &trusted(&key()), None, &VerifyPolicy::default()).expect("verifies");
}

#[test]
fn a_flag_whose_group_is_skipped_is_skipped_too() {
    let mut bad_group = target_group(5, "beta users");
    bad_group.data["conditions"] = json!("not a list");
    let items = vec![bad_group, flag(6, "new-checkout", "beta users")];
    let snapshot = snapshot("production", &items, 1);
    let ids: Vec<i64> = snapshot.skipped().iter().map(|s| s.recipe_id).collect();
    assert_eq!(ids, [5, 6]);
    assert!(snapshot.compiled().flags.experiments.is_empty());
}

#[test]
fn building_is_deterministic_and_the_hash_tracks_content_and_key() {
    let items = sample_items();
    let first = snapshot("production", &items, 5);
    let second = snapshot("production", &items, 5);
    for kind in DocumentKind::ALL {
        assert_eq!(
            first.document(kind).body(),
            second.document(kind).body(),
            "{kind:?} is byte-identical"
        );
        assert_eq!(first.document(kind).etag(), second.document(kind).etag());
    }
    let key = key();
    let hash = content_hash(&items, key.key_id());
    assert_eq!(first.content_hash(), &hash);
    assert_eq!(content_hash(&items, key.key_id()), hash, "stable");

    // Key order inside `data` does not matter; content, ids and the key do.
    let mut reordered = items.clone();
    let object = reordered[0].data.as_object().unwrap().clone();
    let reversed: serde_json::Map<String, Value> = object.into_iter().rev().collect();
    reordered[0].data = Value::Object(reversed);
    assert_eq!(content_hash(&reordered, key.key_id()), hash);

    let mut edited = items.clone();
    edited[0].data["name"] = json!("Renamed");
    assert_ne!(content_hash(&edited, key.key_id()), hash);
    let mut new_revision = items.clone();
    new_revision[0].revision_id += 1;
    assert_ne!(content_hash(&new_revision, key.key_id()), hash);
    assert_ne!(content_hash(&items, second_key().key_id()), hash);
    assert_ne!(content_hash(&items[1..], key.key_id()), hash);
}

#[test]
fn documents_carry_gzip_and_an_etag_of_their_bytes() {
    let snapshot = snapshot("production", &sample_items(), 1);
    for kind in DocumentKind::ALL {
        let document = snapshot.document(kind);
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&document.gzip()[..])
            .read_to_end(&mut unzipped)
            .expect("gzip");
        assert_eq!(&unzipped[..], &document.body()[..], "{kind:?}");
        assert_eq!(
            document.etag_str(),
            flightdeck_server::publish::etag_of(document.body())
        );
        let etag = document.etag_str();
        assert!(
            etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
            "{etag}"
        );
    }
    let other = self::snapshot("production", &sample_items(), 2);
    assert_ne!(other.manifest().etag(), snapshot.manifest().etag());
    assert_eq!(
        other.document(DocumentKind::Experiments).etag(),
        snapshot.document(DocumentKind::Experiments).etag(),
        "unsigned documents do not change with the serial"
    );
}

#[test]
fn a_serial_beyond_what_clients_read_is_refused() {
    let key = key();
    let error = Snapshot::build(
        "production",
        &[],
        &key,
        &published_keys(&key),
        1 << 53,
        published_at(),
    )
    .expect_err("too large");
    assert_eq!(error, PublishError::Serial(1 << 53));
}

#[test]
fn item_kinds_have_the_names_of_the_design() {
    let names = ["normandy", "manifest-v1", "flight", "flag", "target-group"];
    for (kind, name) in ItemKind::ALL.into_iter().zip(names) {
        assert_eq!(kind.as_str(), name);
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(name));
        assert_eq!(
            serde_json::from_value::<ItemKind>(json!(name)).unwrap(),
            kind
        );
        assert_eq!(name.parse::<ItemKind>(), Ok(kind));
    }
    assert!("recipe".parse::<ItemKind>().is_err());
}
