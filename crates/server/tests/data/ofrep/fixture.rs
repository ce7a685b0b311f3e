//! The documents OFREP tests evaluate: CloudBees flags and target groups, Normandy recipes.
//! Shared by the unit tests (`src/ofrep/tests.rs`) and the integration tests.

/// CloudBees experiment and target-group files: `(file name, YAML)`.
pub const CLOUDBEES: &[(&str, &str)] = &[
    (
        "flags/static-flag.yml",
        include_str!("flags/static-flag.yml"),
    ),
    (
        "flags/banner-text.yml",
        include_str!("flags/banner-text.yml"),
    ),
    ("flags/max-items.yml", include_str!("flags/max-items.yml")),
    (
        "flags/checkout-flow.yml",
        include_str!("flags/checkout-flow.yml"),
    ),
    (
        "flags/old-feature.yml",
        include_str!("flags/old-feature.yml"),
    ),
    (
        "flags/retired-feature.yml",
        include_str!("flags/retired-feature.yml"),
    ),
    (
        "flags/account-split.yml",
        include_str!("flags/account-split.yml"),
    ),
    (
        "flags/scheduled-launch.yml",
        include_str!("flags/scheduled-launch.yml"),
    ),
    (
        "flags/code-default.yml",
        include_str!("flags/code-default.yml"),
    ),
    ("flags/cycle-a.yml", include_str!("flags/cycle-a.yml")),
    ("flags/cycle-b.yml", include_str!("flags/cycle-b.yml")),
    (
        "target_groups/beta-testers.yml",
        include_str!("target_groups/beta-testers.yml"),
    ),
    (
        "target_groups/kiwis.yml",
        include_str!("target_groups/kiwis.yml"),
    ),
];

/// Normandy recipes: `(file name, JSON)`.
pub const NORMANDY: &[(&str, &str)] = &[("recipes.json", include_str!("recipes.json"))];
