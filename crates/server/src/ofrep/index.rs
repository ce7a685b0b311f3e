//! The flags OFREP answers for, built once per published snapshot, and their evaluation.
//!
//! Evaluation is a pure function of the index, the client context and the time: no clock,
//! no IO (the HTTP layer passes `now` in).

use std::collections::{HashMap, HashSet};

use flightdeck_core::context::ClientContext;
use flightdeck_core::evaluate::cloudbees::Lookup;
use flightdeck_core::evaluate::{ClientFacts, EvalInput, ItemResult, NoJsFilter};
use flightdeck_core::model::cloudbees::{
    self, Configuration, DEFAULT_STICKINESS_PROPERTY, Document, Experiment, ValueSpec,
};
use flightdeck_core::model::normandy::{self, Arguments, Container, Recipe, RecipeSet};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::context::canonical_text;
use super::response::{
    ErrorCode, EvaluationSuccess, FlagEvaluation, Metadata, MetadataValue, Reason,
};

/// Where the answer for a key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeySource {
    /// An active CloudBees experiment: its index in `Configuration::experiments`.
    Flag(usize),
    /// A CloudBees experiment file validation rejected: its index in `Configuration::rejected`.
    Rejected(usize),
    /// A flag whose experiments are all archived.
    Archived,
    /// A preference some Normandy rollout or experiment sets.
    Preference,
}

/// A document the convenience constructor [`OfrepIndex::from_documents`] could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct DocumentError {
    /// The file name given with the document.
    pub file: String,
    /// The first error found in it.
    pub message: String,
}

/// The published items one environment answers OFREP evaluations from: CloudBees flags with
/// their target groups, and the Normandy recipes whose preferences are exposed as flags.
///
/// Keys, in the order bulk evaluation lists them: active CloudBees flags (file order),
/// flags of rejected experiment files, archived flags, then every preference a rollout or an
/// experiment branch sets (recipe order, first appearance). A preference with the name of a
/// CloudBees flag is answered by the flag.
#[derive(Debug)]
pub struct OfrepIndex {
    config: Configuration,
    /// The flag and group names of `config`, resolved once rather than per evaluation.
    lookup: Lookup,
    recipes: RecipeSet,
    keys: Vec<(String, KeySource)>,
    by_key: HashMap<String, KeySource>,
    digest: [u8; 32],
}

impl OfrepIndex {
    /// Indexes parsed items. `etag_seed` identifies the content (the publication's content
    /// hash, say): bulk ETags hash it, so new content never reuses an old tag.
    pub fn new(config: Configuration, recipes: RecipeSet, etag_seed: &str) -> OfrepIndex {
        let mut keys = Vec::new();
        let mut by_key = HashMap::new();
        let mut add = |key: &str, source: KeySource| {
            if !by_key.contains_key(key) {
                by_key.insert(key.to_owned(), source);
                keys.push((key.to_owned(), source));
            }
        };
        for (i, experiment) in config.experiments.iter().enumerate() {
            if !experiment.is_archived() {
                add(&experiment.flag, KeySource::Flag(i));
            }
        }
        for (i, rejected) in config.rejected.iter().enumerate() {
            if let Some(flag) = &rejected.id {
                add(flag, KeySource::Rejected(i));
            }
        }
        let archived = config
            .experiments
            .iter()
            .filter(|e| e.is_archived())
            .chain(&config.archived_experiments);
        for experiment in archived {
            add(&experiment.flag, KeySource::Archived);
        }
        for recipe in &recipes.recipes {
            for name in preferences_of(recipe) {
                add(name, KeySource::Preference);
            }
        }
        OfrepIndex {
            lookup: Lookup::new(&config),
            config,
            recipes,
            keys,
            by_key,
            digest: Sha256::digest(etag_seed.as_bytes()).into(),
        }
    }

    /// An index with nothing in it (an environment with nothing published).
    pub fn empty(etag_seed: &str) -> OfrepIndex {
        OfrepIndex::new(
            Configuration::default(),
            RecipeSet {
                recipes: Vec::new(),
                container: Container::Array,
            },
            etag_seed,
        )
    }

    /// Builds an index from documents as text, for tests and tools: CloudBees experiment and
    /// target-group files as `(file name, YAML or JSON)` (an experiment with
    /// `archived: true` counts as archived), and Normandy recipe files `(file name, JSON)` in
    /// any shape `normandy::parse` reads, concatenated in order. A document that cannot be
    /// used at all is an error; recipes with invalid arguments are kept (they never apply).
    pub fn from_documents(
        cloudbees_files: &[(&str, &str)],
        normandy_files: &[(&str, &str)],
        etag_seed: &str,
    ) -> Result<OfrepIndex, DocumentError> {
        let mut config = Configuration::default();
        for (file, text) in cloudbees_files {
            let parsed = cloudbees::parse_document(file, text);
            match parsed.value {
                Some(Document::Experiment(experiment)) if experiment.is_archived() => {
                    config.archived_experiments.push(experiment);
                }
                Some(Document::Experiment(experiment)) => config.experiments.push(experiment),
                Some(Document::TargetGroup(group)) => config.target_groups.push(group),
                None => return Err(first_error(file, &parsed.diagnostics)),
            }
        }
        let mut recipes = Vec::new();
        for (file, text) in normandy_files {
            let parsed = normandy::parse(file, text);
            match parsed.value {
                Some(set) => recipes.extend(set.recipes),
                None => return Err(first_error(file, &parsed.diagnostics)),
            }
        }
        let recipes = RecipeSet {
            recipes,
            container: Container::Array,
        };
        Ok(OfrepIndex::new(config, recipes, etag_seed))
    }

    /// Every key, in bulk order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(key, _)| key.as_str())
    }

    /// Whether `key` names a flag or a preference of this index.
    pub fn contains(&self, key: &str) -> bool {
        self.by_key.contains_key(key)
    }

    /// The SHA-256 of the ETag seed, as lowercase hex.
    pub fn content_digest(&self) -> String {
        hex(&self.digest)
    }

    /// Evaluates one key for `context` at `now`. A key the index does not know is a
    /// `FLAG_NOT_FOUND` failure.
    pub fn evaluate(
        &self,
        key: &str,
        context: &ClientContext,
        now: jiff::Timestamp,
    ) -> FlagEvaluation {
        let facts = ClientFacts::default();
        let input = EvalInput {
            context,
            facts: &facts,
            now,
            js_filter: &NoJsFilter,
        };
        match self.by_key.get(key) {
            None => FlagEvaluation::failure(
                key,
                ErrorCode::FlagNotFound,
                format!("no flag or preference is named {key:?}"),
            ),
            Some(KeySource::Flag(i)) => {
                let result = flightdeck_core::evaluate::cloudbees::evaluate_flag_with(
                    &self.config,
                    &self.lookup,
                    key,
                    &input,
                );
                self.flag_evaluation(key, *i, result.as_ref(), &input)
            }
            Some(source @ (KeySource::Rejected(_) | KeySource::Archived)) => {
                self.inactive_flag(key, *source)
            }
            Some(KeySource::Preference) => {
                let decisions = self.preference_decisions(&input);
                preference_evaluation(key, decisions.get(key))
            }
        }
    }

    /// Evaluates every key for `context` at `now`, in bulk order.
    pub fn evaluate_all(
        &self,
        context: &ClientContext,
        now: jiff::Timestamp,
    ) -> Vec<FlagEvaluation> {
        let facts = ClientFacts::default();
        let input = EvalInput {
            context,
            facts: &facts,
            now,
            js_filter: &NoJsFilter,
        };
        let has_flags = self
            .keys
            .iter()
            .any(|(_, source)| matches!(source, KeySource::Flag(_)));
        // One evaluation of the whole configuration shares dependency results between flags.
        let flag_results = if has_flags {
            flightdeck_core::evaluate::cloudbees::evaluate(&self.config, &input)
        } else {
            Vec::new()
        };
        let mut by_flag: HashMap<&str, &ItemResult> = HashMap::new();
        for result in &flag_results {
            let rejected = result
                .reason
                .as_deref()
                .is_some_and(|reason| reason.starts_with("invalid: "));
            if !rejected {
                by_flag.entry(result.id.as_str()).or_insert(result);
            }
        }
        let decisions = if self.recipes.recipes.is_empty() {
            HashMap::new()
        } else {
            self.preference_decisions(&input)
        };
        self.keys
            .iter()
            .map(|(key, source)| match source {
                KeySource::Flag(i) => {
                    self.flag_evaluation(key, *i, by_flag.get(key.as_str()).copied(), &input)
                }
                KeySource::Rejected(_) | KeySource::Archived => self.inactive_flag(key, *source),
                KeySource::Preference => preference_evaluation(key, decisions.get(key.as_str())),
            })
            .collect()
    }

    /// The ETag of a bulk response: a hash of the content (the ETag seed), the posted
    /// context (canonical: key order does not matter) and the response body. The body is in
    /// it because results can change with time alone (schedules, filters on the request
    /// time) while content and context stay the same.
    pub fn bulk_etag(&self, posted_context: &Map<String, Value>, body: &[u8]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"flightdeck-ofrep-bulk\n");
        hasher.update(self.digest);
        hasher.update(b"\n");
        hasher.update(canonical_text(posted_context).as_bytes());
        hasher.update(b"\n");
        hasher.update(body);
        let digest: [u8; 32] = hasher.finalize().into();
        format!("\"{}\"", hex(digest.get(..16).unwrap_or_default()))
    }

    /// The answer for a flag that exists but is not evaluated.
    fn inactive_flag(&self, key: &str, source: KeySource) -> FlagEvaluation {
        match source {
            KeySource::Rejected(i) => {
                let message = self
                    .config
                    .rejected
                    .get(i)
                    .map_or("", |rejected| rejected.message.as_str());
                FlagEvaluation::failure(
                    key,
                    ErrorCode::General,
                    format!("the flag's configuration is invalid: {message}"),
                )
            }
            _ => {
                let mut metadata = cloudbees_metadata("archived");
                metadata.insert("archived".to_owned(), true.into());
                success(key, None, Reason::Disabled, None, metadata)
            }
        }
    }

    /// Maps the core's decision for the active flag at `experiments[index]` to OFREP.
    fn flag_evaluation(
        &self,
        key: &str,
        index: usize,
        result: Option<&ItemResult>,
        input: &EvalInput<'_>,
    ) -> FlagEvaluation {
        let (Some(experiment), Some(result)) = (self.config.experiments.get(index), result) else {
            return FlagEvaluation::failure(
                key,
                ErrorCode::General,
                "the flag could not be evaluated".to_owned(),
            );
        };
        let rule = result.reason.as_deref().unwrap_or_default();
        match rule {
            "disabled" => success(key, None, Reason::Disabled, None, cloudbees_metadata(rule)),
            "no-stickiness-value" => {
                let property = experiment.stickiness_property();
                if property == DEFAULT_STICKINESS_PROPERTY {
                    FlagEvaluation::failure(
                        key,
                        ErrorCode::TargetingKeyMissing,
                        format!(
                            "the flag {key:?} splits users by targetingKey, and the context has none"
                        ),
                    )
                } else {
                    FlagEvaluation::failure(
                        key,
                        ErrorCode::InvalidContext,
                        format!(
                            "the flag {key:?} splits users by the attribute {property:?}, and the context has none"
                        ),
                    )
                }
            }
            "dependency-cycle" | "dependency-too-deep" => FlagEvaluation::failure(
                key,
                ErrorCode::General,
                format!("the flag cannot be evaluated: {rule}"),
            ),
            _ => {
                let reason = flag_reason(experiment, rule, input);
                let variant = result.value.as_ref().and_then(variant_of);
                success(
                    key,
                    result.value.clone(),
                    reason,
                    variant,
                    cloudbees_metadata(rule),
                )
            }
        }
    }

    /// What the Normandy recipes give each preference for this client.
    ///
    /// Experiments come first: an experiment's value wins over a rollout's, as on a device
    /// (experiments write their default-branch values after rollouts at startup, and
    /// user-branch values shadow the default branch). Among experiments, and among rollouts,
    /// the first matching recipe in recipe order wins, and a later one that shares any
    /// preference with an earlier one does not apply at all (Normandy's `pref-conflict` and
    /// rollout `conflict`). A matching rollback stops the rollout it names.
    fn preference_decisions<'s>(
        &'s self,
        input: &EvalInput<'_>,
    ) -> HashMap<&'s str, PrefDecision<'s>> {
        let results = flightdeck_core::evaluate::normandy::evaluate(&self.recipes, input);
        let evaluated: Vec<(&Recipe, ItemResult)> =
            self.recipes.recipes.iter().zip(results).collect();

        let mut rolled_back: HashMap<&str, &Recipe> = HashMap::new();
        for (recipe, result) in &evaluated {
            if let Arguments::PreferenceRollback(args) = &recipe.arguments
                && result.matched
            {
                rolled_back
                    .entry(args.rollout_slug.as_str())
                    .or_insert(*recipe);
            }
        }

        let mut decisions: HashMap<&str, PrefDecision> = HashMap::new();
        let mut experiment_prefs: HashSet<&str> = HashSet::new();
        for (recipe, result) in &evaluated {
            let slug = match &recipe.arguments {
                Arguments::PreferenceExperiment(args) => args.slug.as_str(),
                Arguments::MultiPreferenceExperiment(args) => args.slug.as_str(),
                _ => continue,
            };
            let all_prefs = preferences_of(recipe);
            if result.matched {
                if all_prefs.iter().any(|name| experiment_prefs.contains(name)) {
                    continue;
                }
                let (Some(Value::Object(values)), Some(branch)) = (&result.value, &result.branch)
                else {
                    continue;
                };
                // The preferences of the chosen branch are the ones it holds on a device.
                for name in all_prefs {
                    if let Some(value) = values.get(name) {
                        experiment_prefs.insert(name);
                        decisions.insert(
                            name,
                            PrefDecision::Experiment {
                                recipe,
                                slug,
                                branch: branch.clone(),
                                value: value.clone(),
                            },
                        );
                    }
                }
            } else if result.reason.as_deref() == Some("no-user-id") {
                for name in all_prefs {
                    decisions
                        .entry(name)
                        .or_insert(PrefDecision::NeedsTargetingKey { slug });
                }
            }
        }

        let mut rollout_prefs: HashSet<&str> = HashSet::new();
        for (recipe, result) in &evaluated {
            let Arguments::PreferenceRollout(args) = &recipe.arguments else {
                continue;
            };
            if !result.matched {
                continue;
            }
            if let Some(rollback) = rolled_back.get(args.slug.as_str()) {
                for pref in &args.preferences {
                    decisions.entry(pref.preference_name.as_str()).or_insert(
                        PrefDecision::RolledBack {
                            rollback,
                            slug: &args.slug,
                        },
                    );
                }
                continue;
            }
            if args
                .preferences
                .iter()
                .any(|pref| rollout_prefs.contains(pref.preference_name.as_str()))
            {
                continue;
            }
            for pref in &args.preferences {
                let name = pref.preference_name.as_str();
                rollout_prefs.insert(name);
                let replace = match decisions.get(name) {
                    None | Some(PrefDecision::RolledBack { .. }) => true,
                    Some(_) => false,
                };
                if replace {
                    decisions.insert(
                        name,
                        PrefDecision::Rollout {
                            recipe,
                            slug: &args.slug,
                            value: pref_json(&pref.value),
                        },
                    );
                }
            }
        }
        decisions
    }
}

/// What the recipes give one preference.
#[derive(Debug, Clone)]
enum PrefDecision<'a> {
    /// The branch of a matching experiment.
    Experiment {
        recipe: &'a Recipe,
        slug: &'a str,
        branch: String,
        value: Value,
    },
    /// A matching rollout.
    Rollout {
        recipe: &'a Recipe,
        slug: &'a str,
        value: Value,
    },
    /// A matching experiment sets it, and without a targeting key no branch can be chosen.
    NeedsTargetingKey { slug: &'a str },
    /// The only matching rollouts that set it are rolled back by `rollback`.
    RolledBack { rollback: &'a Recipe, slug: &'a str },
}

fn preference_evaluation(key: &str, decision: Option<&PrefDecision<'_>>) -> FlagEvaluation {
    match decision {
        None => {
            let mut metadata = Metadata::new();
            metadata.insert("source".to_owned(), "normandy".into());
            success(key, None, Reason::Default, None, metadata)
        }
        Some(PrefDecision::Experiment {
            recipe,
            slug,
            branch,
            value,
        }) => success(
            key,
            Some(value.clone()),
            Reason::Split,
            Some(branch.clone()),
            normandy_metadata(recipe, slug),
        ),
        Some(PrefDecision::Rollout {
            recipe,
            slug,
            value,
        }) => success(
            key,
            Some(value.clone()),
            Reason::TargetingMatch,
            None,
            normandy_metadata(recipe, slug),
        ),
        Some(PrefDecision::RolledBack { rollback, slug }) => success(
            key,
            None,
            Reason::Disabled,
            None,
            normandy_metadata(rollback, slug),
        ),
        Some(PrefDecision::NeedsTargetingKey { slug }) => FlagEvaluation::failure(
            key,
            ErrorCode::TargetingKeyMissing,
            format!(
                "the preference {key:?} is set by the experiment {slug:?}, whose branch is chosen by targetingKey, and the context has none"
            ),
        ),
    }
}

/// The preferences a rollout or experiment recipe sets (every branch of an experiment), in
/// order, each once; none for other recipes.
fn preferences_of(recipe: &Recipe) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    match &recipe.arguments {
        Arguments::PreferenceRollout(args) => {
            names.extend(args.preferences.iter().map(|p| p.preference_name.as_str()));
        }
        Arguments::PreferenceExperiment(args) => names.push(args.preference_name.as_str()),
        Arguments::MultiPreferenceExperiment(args) => {
            for branch in &args.branches {
                names.extend(branch.preferences.keys().map(String::as_str));
            }
        }
        _ => {}
    }
    let mut seen = HashSet::new();
    names.retain(|name| seen.insert(*name));
    names
}

/// The OFREP reason for a CloudBees flag decided by `rule` (the core's reason:
/// `condition[i]` or `default`, possibly after `platform <name>: `).
fn flag_reason(experiment: &Experiment, rule: &str, input: &EvalInput<'_>) -> Reason {
    let platform = input.context.platform.as_deref().and_then(|name| {
        experiment
            .platforms
            .iter()
            .flatten()
            .find(|platform| platform.name == name)
    });
    let (conditions, root, rule) = match platform {
        Some(platform) => (
            platform.conditions.as_deref().unwrap_or_default(),
            platform.value.as_ref(),
            rule.strip_prefix(&format!("platform {}: ", platform.name))
                .unwrap_or(rule),
        ),
        None => (
            experiment.conditions.as_deref().unwrap_or_default(),
            experiment.value.as_ref(),
            rule,
        ),
    };
    if rule == "default" {
        return if root.is_some_and(|spec| depends_on_bucket(spec, input.now)) {
            Reason::Split
        } else if conditions.is_empty() {
            Reason::Static
        } else {
            Reason::Default
        };
    }
    let condition = rule
        .strip_prefix("condition[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|index| index.parse::<usize>().ok())
        .and_then(|index| conditions.get(index));
    match condition {
        Some(condition)
            if condition
                .value
                .as_ref()
                .is_some_and(|spec| depends_on_bucket(spec, input.now)) =>
        {
            Reason::Split
        }
        Some(_) => Reason::TargetingMatch,
        None => Reason::Unknown,
    }
}

/// Whether a value specification picks by bucket at `now` (the same tests the core makes
/// before it needs a stickiness value).
fn depends_on_bucket(spec: &ValueSpec, now: jiff::Timestamp) -> bool {
    match spec {
        ValueSpec::Split(items) => {
            let nonzero: Vec<f64> = items
                .iter()
                .map(|item| item.effective_percentage())
                .filter(|percentage| *percentage > 0.0)
                .collect();
            match nonzero.as_slice() {
                [] => false,
                [only] => *only < 100.0,
                _ => true,
            }
        }
        ValueSpec::Scheduled(items) => {
            let current = items
                .iter()
                .filter(|item| item.from.at <= now)
                .reduce(|best, item| {
                    if item.from.at >= best.from.at {
                        item
                    } else {
                        best
                    }
                });
            let percentage = current.map_or(0.0, |item| item.effective_percentage());
            percentage > 0.0 && percentage < 100.0
        }
        ValueSpec::Null | ValueSpec::Single(_) => false,
    }
}

/// The variant of a CloudBees value: its string as the rox SDKs' `flagValue()` gives it.
fn variant_of(value: &Value) -> Option<String> {
    match value {
        Value::Bool(b) => Some(b.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n.as_f64().map(flightdeck_core::value::js_number_to_string),
        _ => None,
    }
}

fn success(
    key: &str,
    value: Option<Value>,
    reason: Reason,
    variant: Option<String>,
    metadata: Metadata,
) -> FlagEvaluation {
    FlagEvaluation::Success(EvaluationSuccess {
        key: key.to_owned(),
        value,
        reason,
        variant,
        metadata,
    })
}

fn cloudbees_metadata(rule: &str) -> Metadata {
    let mut metadata = Metadata::new();
    metadata.insert("source".to_owned(), "cloudbees".into());
    metadata.insert("rule".to_owned(), rule.into());
    metadata
}

fn normandy_metadata(recipe: &Recipe, slug: &str) -> Metadata {
    let mut metadata = Metadata::new();
    metadata.insert("source".to_owned(), "normandy".into());
    metadata.insert("recipeId".to_owned(), MetadataValue::from(recipe.id));
    metadata.insert("action".to_owned(), recipe.action.as_str().into());
    metadata.insert("slug".to_owned(), slug.into());
    metadata
}

fn pref_json(value: &flightdeck_core::context::PrefValue) -> Value {
    use flightdeck_core::context::PrefValue;
    match value {
        PrefValue::Bool(b) => Value::Bool(*b),
        PrefValue::Int(n) => Value::from(*n),
        PrefValue::String(s) => Value::String(s.clone()),
    }
}

fn first_error(
    file: &str,
    diagnostics: &[flightdeck_core::diagnostic::Diagnostic],
) -> DocumentError {
    let message = diagnostics.iter().find(|d| d.is_error()).map_or_else(
        || "the document cannot be used".to_owned(),
        ToString::to_string,
    );
    DocumentError {
        file: file.to_owned(),
        message,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}
