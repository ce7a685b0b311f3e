//! Validation of a YAML tree into the CloudBees model, collecting every problem.

use std::collections::HashSet;
use std::sync::Arc;

use super::yaml::{self, Kind, Node};
use super::{
    CompiledRegex, Condition, Declared, Dependency, Document, Experiment, FlagValue,
    GroupCondition, GroupJoin, GroupOperator, OneOrMany, Operand, OperandValue, Platform,
    PropertyCondition, PropertyOperator, ScheduleTime, ScheduledValue, SourceMap, SplitValue,
    TargetGroup, ValueSpec, VersionCondition,
};
use crate::diagnostic::{Diagnostic, FieldPath, Position};
use crate::model::Parsed;

/// Largest compiled size of one `regex` operand, so that a hostile pattern cannot make
/// compilation (and matching) expensive.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Tolerance when comparing split sums with 100 (the validator compares at 4 decimals).
const PERCENT_EPSILON: f64 = 1e-4;

const EXPERIMENT_KEYS: &[&str] = &[
    "version",
    "type",
    "flag",
    "availableValues",
    "name",
    "description",
    "enabled",
    "labels",
    "stickinessProperty",
    "platforms",
    "conditions",
    "value",
    "archived",
];
const TARGET_GROUP_KEYS: &[&str] = &[
    "version",
    "type",
    "name",
    "description",
    "operator",
    "conditions",
];
const PLATFORM_KEYS: &[&str] = &["name", "flag", "conditions", "value"];
const CONDITION_KEYS: &[&str] = &["dependency", "group", "version", "property", "value"];
const DEPENDENCY_KEYS: &[&str] = &["flag", "value"];
const GROUP_KEYS: &[&str] = &["operator", "name"];
const VERSION_KEYS: &[&str] = &["operator", "semver"];
const PROPERTY_KEYS: &[&str] = &["name", "operator", "operand"];
const TG_CONDITION_KEYS: &[&str] = &["property", "operator", "operand"];
const VALUE_ENTRY_KEYS: &[&str] = &["percentage", "option", "from"];

pub(super) fn parse_document(file: &str, text: &str) -> Parsed<Document> {
    read_document(file, text).0
}

/// Parses a document and says what it declares itself to be, whatever validation finds.
pub(super) fn read_document(file: &str, text: &str) -> (Parsed<Document>, Declared) {
    let mut reader = Reader {
        text,
        diagnostics: Vec::new(),
        source: SourceMap::new(file),
    };
    let root = match yaml::load(text) {
        Ok(root) => root,
        Err(err) => {
            let parsed = Parsed {
                value: None,
                diagnostics: vec![Diagnostic::error(
                    file,
                    err.position,
                    FieldPath::root(),
                    err.message,
                )],
            };
            return (parsed, Declared::NotYaml);
        }
    };
    let declared = declared(&root);
    let path = FieldPath::root();
    reader.source.record(&path, root.position);
    let document = match &root.kind {
        Kind::Map(_) => {
            let kind = lookup(&root, "type");
            match kind.map(|n| &n.kind) {
                Some(Kind::Str(t)) if t == "experiment" => {
                    reader.experiment(&root).map(Document::Experiment)
                }
                Some(Kind::Str(t)) if t == "target-group" => {
                    reader.target_group(&root).map(Document::TargetGroup)
                }
                Some(_) => {
                    let node = kind.unwrap_or(&root);
                    reader.error(
                        node,
                        &path.key("type"),
                        "`type` must be `experiment` or `target-group`".to_owned(),
                    );
                    None
                }
                None => {
                    reader.error(
                        &root,
                        &path,
                        "missing required field `type` (`experiment` or `target-group`)".to_owned(),
                    );
                    None
                }
            }
        }
        _ => {
            reader.error(
                &root,
                &path,
                format!(
                    "expected a mapping (an experiment or target group), found {}",
                    root.type_name()
                ),
            );
            None
        }
    };
    let has_errors = reader.diagnostics.iter().any(Diagnostic::is_error);
    let parsed = Parsed {
        value: if has_errors { None } else { document },
        diagnostics: reader.diagnostics,
    };
    (parsed, declared)
}

/// What a YAML file's top level says it is.
pub(super) fn declared(root: &Node) -> Declared {
    let text_of = |key: &str| match lookup(root, key).map(|n| &n.kind) {
        Some(Kind::Str(text)) => Some(text.as_str()),
        _ => None,
    };
    match text_of("type") {
        Some("experiment") => Declared::Experiment {
            flag: text_of("flag")
                .filter(|flag| !flag.is_empty())
                .map(str::to_owned),
            archived: lookup(root, "archived").is_some_and(|n| n.kind == Kind::Bool(true)),
        },
        Some("target-group") => Declared::TargetGroup,
        _ => Declared::Foreign,
    }
}

fn lookup<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.kind {
        Kind::Map(entries) => entries.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
        _ => None,
    }
}

/// The members of a mapping that has been checked against its known keys.
struct Fields<'n> {
    node: &'n Node,
}

impl<'n> Fields<'n> {
    /// The member `key`, even when it is `null`.
    fn get(&self, key: &str) -> Option<&'n Node> {
        lookup(self.node, key)
    }

    /// The member `key` unless it is absent or `null` (for optional fields, where an empty
    /// value means "not given"; `value: null` is different and read with [`Fields::get`]).
    fn present(&self, key: &str) -> Option<&'n Node> {
        lookup(self.node, key).filter(|n| n.kind != Kind::Null)
    }
}

struct Reader<'a> {
    text: &'a str,
    diagnostics: Vec<Diagnostic>,
    source: SourceMap,
}

impl Reader<'_> {
    fn error(&mut self, node: &Node, path: &FieldPath, message: String) {
        self.diagnostics.push(Diagnostic::error(
            self.source.file(),
            node.position,
            path.clone(),
            message,
        ));
    }

    fn warning(&mut self, node: &Node, path: &FieldPath, message: String) {
        self.diagnostics.push(Diagnostic::warning(
            self.source.file(),
            node.position,
            path.clone(),
            message,
        ));
    }

    /// Checks that `node` is a mapping, warns about unknown keys and records positions.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        path: &FieldPath,
        known: &[&str],
        what: &str,
    ) -> Option<Fields<'n>> {
        self.source.record(path, node.position);
        let Kind::Map(entries) = &node.kind else {
            self.error(
                node,
                path,
                format!("expected {what} (a mapping), found {}", node.type_name()),
            );
            return None;
        };
        for (key, value) in entries {
            let child = path.key(&key.name);
            self.source.record(&child, value.position);
            if !known.contains(&key.name.as_str()) {
                self.diagnostics.push(Diagnostic::warning(
                    self.source.file(),
                    key.position,
                    child,
                    format!("unknown key `{}` is ignored", key.name),
                ));
            }
        }
        Some(Fields { node })
    }

    fn required<'n>(
        &mut self,
        fields: &Fields<'n>,
        path: &FieldPath,
        key: &str,
    ) -> Option<&'n Node> {
        let found = fields.get(key);
        if found.is_none() {
            self.error(fields.node, path, format!("missing required field `{key}`"));
        }
        found
    }

    fn string(&mut self, node: &Node, path: &FieldPath) -> Option<String> {
        match &node.kind {
            Kind::Str(s) => Some(s.clone()),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a string, found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn non_empty_string(&mut self, node: &Node, path: &FieldPath) -> Option<String> {
        let s = self.string(node, path)?;
        if s.trim().is_empty() {
            self.error(node, path, "must not be empty".to_owned());
            return None;
        }
        Some(s)
    }

    /// A string that is sometimes written unquoted as a number (`version: 1.0`,
    /// `semver: 1.30`): the number is read as its source text.
    fn string_like(&mut self, node: &Node, path: &FieldPath, warn: bool) -> Option<String> {
        match &node.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(_) | Kind::Float(_) => {
                let text = node
                    .raw(self.text)
                    .map(str::to_owned)
                    .unwrap_or_else(|| number_text(node));
                if warn {
                    self.warning(
                        node,
                        path,
                        format!("`{text}` is a number; quote it to make it a string"),
                    );
                }
                Some(text)
            }
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a string, found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn bool(&mut self, node: &Node, path: &FieldPath) -> Option<bool> {
        match node.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected true or false, found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn optional<T>(
        &mut self,
        fields: &Fields<'_>,
        path: &FieldPath,
        key: &str,
        read: impl FnOnce(&mut Self, &Node, &FieldPath) -> Option<T>,
    ) -> Option<T> {
        let node = fields.present(key)?;
        read(self, node, &path.key(key))
    }

    fn flag_value(&mut self, node: &Node, path: &FieldPath) -> Option<FlagValue> {
        match &node.kind {
            Kind::Bool(b) => Some(FlagValue::Bool(*b)),
            Kind::Str(s) => Some(FlagValue::String(s.clone())),
            Kind::Int(_) | Kind::Float(_) => Some(FlagValue::Number(number(node))),
            _ => {
                self.error(
                    node,
                    path,
                    format!(
                        "expected a string, boolean or number, found {}",
                        node.type_name()
                    ),
                );
                None
            }
        }
    }

    fn one_or_many(&mut self, node: &Node, path: &FieldPath, non_empty: bool) -> Option<OneOrMany> {
        match &node.kind {
            Kind::Str(s) => Some(OneOrMany::One(s.clone())),
            Kind::Seq(items) => {
                if non_empty && items.is_empty() {
                    self.error(node, path, "must not be empty".to_owned());
                    return None;
                }
                let mut out = Vec::new();
                let mut ok = true;
                for (idx, item) in items.iter().enumerate() {
                    let item_path = path.index(idx);
                    self.source.record(&item_path, item.position);
                    match self.string(item, &item_path) {
                        Some(s) => out.push(s),
                        None => ok = false,
                    }
                }
                ok.then_some(OneOrMany::Many(out))
            }
            _ => {
                self.error(
                    node,
                    path,
                    format!(
                        "expected a string or a list of strings, found {}",
                        node.type_name()
                    ),
                );
                None
            }
        }
    }

    fn experiment(&mut self, root: &Node) -> Option<Experiment> {
        let path = FieldPath::root();
        let fields = self.fields(root, &path, EXPERIMENT_KEYS, "an experiment")?;
        let flag = self
            .required(&fields, &path, "flag")
            .and_then(|n| self.non_empty_string(n, &path.key("flag")));
        let version = self.optional(&fields, &path, "version", |r, n, p| {
            r.string_like(n, p, false)
        });
        let available_values = self.optional(&fields, &path, "availableValues", |r, n, p| {
            r.available_values(n, p)
        });
        let name = self.optional(&fields, &path, "name", Self::string);
        let description = self.optional(&fields, &path, "description", Self::string);
        let enabled = self.optional(&fields, &path, "enabled", Self::bool);
        let archived = self.optional(&fields, &path, "archived", Self::bool);
        let labels = self.optional(&fields, &path, "labels", |r, n, p| {
            r.one_or_many(n, p, false)
        });
        let stickiness_property =
            self.optional(&fields, &path, "stickinessProperty", Self::non_empty_string);
        let platforms = self.optional(&fields, &path, "platforms", Self::platforms);
        let conditions = self.optional(&fields, &path, "conditions", Self::conditions);
        let value = fields
            .get("value")
            .and_then(|n| self.value_spec(n, &path.key("value")));
        let experiment = Experiment {
            version,
            flag: flag?,
            available_values,
            name,
            description,
            enabled,
            labels,
            stickiness_property,
            platforms,
            conditions,
            value,
            archived,
            source: self.source.clone(),
        };
        self.check_values(&experiment);
        Some(experiment)
    }

    fn available_values(&mut self, node: &Node, path: &FieldPath) -> Option<Vec<FlagValue>> {
        let Kind::Seq(items) = &node.kind else {
            self.error(
                node,
                path,
                format!("expected a list of values, found {}", node.type_name()),
            );
            return None;
        };
        let mut out = Vec::new();
        for (idx, item) in items.iter().enumerate() {
            let item_path = path.index(idx);
            self.source.record(&item_path, item.position);
            out.extend(self.flag_value(item, &item_path));
        }
        Some(out)
    }

    /// Cross-field checks of one experiment: schedules need a boolean flag, values should be
    /// among `availableValues`.
    fn check_values(&mut self, experiment: &Experiment) {
        let boolean = experiment.is_boolean();
        let mut specs: Vec<(FieldPath, &ValueSpec)> = Vec::new();
        let root = FieldPath::root();
        if let Some(v) = &experiment.value {
            specs.push((root.key("value"), v));
        }
        for (idx, c) in experiment.conditions.iter().flatten().enumerate() {
            if let Some(v) = &c.value {
                specs.push((root.key("conditions").index(idx).key("value"), v));
            }
        }
        for (pidx, p) in experiment.platforms.iter().flatten().enumerate() {
            let ppath = root.key("platforms").index(pidx);
            if let Some(v) = &p.value {
                specs.push((ppath.key("value"), v));
            }
            for (idx, c) in p.conditions.iter().flatten().enumerate() {
                if let Some(v) = &c.value {
                    specs.push((ppath.key("conditions").index(idx).key("value"), v));
                }
            }
        }
        for (path, spec) in specs {
            match spec {
                ValueSpec::Scheduled(_) if !boolean => {
                    self.diagnostics.push(self.source.error(
                        path,
                        "scheduled values are only allowed for boolean flags".to_owned(),
                    ));
                }
                ValueSpec::Single(v) => self.check_available(experiment, &path, v),
                ValueSpec::Split(items) => {
                    for (idx, item) in items.iter().enumerate() {
                        self.check_available(
                            experiment,
                            &path.index(idx).key("option"),
                            &item.option,
                        );
                    }
                }
                _ => {}
            }
        }
    }

    fn check_available(&mut self, experiment: &Experiment, path: &FieldPath, value: &FlagValue) {
        if let Some(available) = &experiment.available_values
            && !available.contains(value)
        {
            self.diagnostics.push(self.source.warning(
                path.clone(),
                format!(
                    "value `{}` is not among `availableValues`",
                    value.to_flag_string()
                ),
            ));
        }
    }

    fn platforms(&mut self, node: &Node, path: &FieldPath) -> Option<Vec<Platform>> {
        let items = self.list(node, path, "platforms")?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (idx, item) in items.iter().enumerate() {
            let item_path = path.index(idx);
            let Some(fields) = self.fields(item, &item_path, PLATFORM_KEYS, "a platform") else {
                continue;
            };
            let name = self
                .required(&fields, &item_path, "name")
                .and_then(|n| self.non_empty_string(n, &item_path.key("name")));
            let flag = self.optional(&fields, &item_path, "flag", Self::non_empty_string);
            if let Some(n) = fields.present("flag") {
                self.warning(
                    n,
                    &item_path.key("flag"),
                    "the platform flag-name override is deprecated and not used in evaluation"
                        .to_owned(),
                );
            }
            let conditions = self.optional(&fields, &item_path, "conditions", Self::conditions);
            let value = fields
                .get("value")
                .and_then(|n| self.value_spec(n, &item_path.key("value")));
            if let Some(name) = name {
                if !seen.insert(name.clone()) {
                    self.error(
                        item,
                        &item_path.key("name"),
                        format!("platform `{name}` is configured twice"),
                    );
                }
                out.push(Platform {
                    name,
                    flag,
                    conditions,
                    value,
                });
            }
        }
        Some(out)
    }

    fn list<'n>(&mut self, node: &'n Node, path: &FieldPath, what: &str) -> Option<&'n [Node]> {
        match &node.kind {
            Kind::Seq(items) => {
                for (idx, item) in items.iter().enumerate() {
                    self.source.record(&path.index(idx), item.position);
                }
                Some(items)
            }
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a list of {what}, found {}", node.type_name()),
                );
                None
            }
        }
    }

    fn conditions(&mut self, node: &Node, path: &FieldPath) -> Option<Vec<Condition>> {
        let items = self.list(node, path, "conditions")?;
        let mut out = Vec::new();
        for (idx, item) in items.iter().enumerate() {
            out.extend(self.condition(item, &path.index(idx)));
        }
        Some(out)
    }

    fn condition(&mut self, node: &Node, path: &FieldPath) -> Option<Condition> {
        let fields = self.fields(node, path, CONDITION_KEYS, "a condition")?;
        let dependency = self.optional(&fields, path, "dependency", Self::dependency);
        let group = self.optional(&fields, path, "group", Self::group);
        let version = self.optional(&fields, path, "version", Self::version);
        let property = self.optional(&fields, path, "property", |r, n, p| {
            r.property_condition(n, p, "name")
        });
        let value = fields
            .get("value")
            .and_then(|n| self.value_spec(n, &path.key("value")));
        let condition = Condition {
            dependency,
            group,
            version,
            property,
            value,
        };
        if fields.get("value").is_none() {
            self.warning(
                node,
                path,
                "condition has no `value`; when it matches, the flag default is served".to_owned(),
            );
        }
        Some(condition)
    }

    fn dependency(&mut self, node: &Node, path: &FieldPath) -> Option<Dependency> {
        let fields = self.fields(node, path, DEPENDENCY_KEYS, "a dependency")?;
        let flag = self
            .required(&fields, path, "flag")
            .and_then(|n| self.non_empty_string(n, &path.key("flag")));
        let value = self
            .required(&fields, path, "value")
            .and_then(|n| self.flag_value(n, &path.key("value")));
        Some(Dependency {
            flag: flag?,
            value: value?,
        })
    }

    fn group(&mut self, node: &Node, path: &FieldPath) -> Option<GroupCondition> {
        let fields = self.fields(node, path, GROUP_KEYS, "a group condition")?;
        let operator = match fields.get("operator") {
            Some(n) => {
                let text = self.string(n, &path.key("operator"))?;
                match GroupOperator::parse(&text) {
                    Some(op) => Some(op),
                    None => {
                        self.error(
                            n,
                            &path.key("operator"),
                            format!(
                                "unknown group operator `{text}` (expected or, and, not or nor)"
                            ),
                        );
                        return None;
                    }
                }
            }
            None => None,
        };
        let name = self
            .required(&fields, path, "name")
            .and_then(|n| self.one_or_many(n, &path.key("name"), true))?;
        Some(GroupCondition { operator, name })
    }

    fn version(&mut self, node: &Node, path: &FieldPath) -> Option<VersionCondition> {
        let fields = self.fields(node, path, VERSION_KEYS, "a version condition")?;
        let operator = self.required(&fields, path, "operator").and_then(|n| {
            let op_path = path.key("operator");
            let text = self.string(n, &op_path)?;
            match PropertyOperator::parse(&text).filter(|op| op.is_semver()) {
                Some(op) => Some(op),
                None => {
                    self.error(
                        n,
                        &op_path,
                        format!(
                            "unknown version operator `{text}` (expected semver-gt, semver-gte, \
                             semver-eq, semver-ne, semver-lt or semver-lte)"
                        ),
                    );
                    None
                }
            }
        });
        let semver = self
            .required(&fields, path, "semver")
            .and_then(|n| self.string_like(n, &path.key("semver"), true));
        Some(VersionCondition {
            operator: operator?,
            semver: semver?,
        })
    }

    /// A property test; `name_key` is `name` inside an experiment condition and `property`
    /// in a target group.
    fn property_condition(
        &mut self,
        node: &Node,
        path: &FieldPath,
        name_key: &str,
    ) -> Option<PropertyCondition> {
        let known = if name_key == "name" {
            PROPERTY_KEYS
        } else {
            TG_CONDITION_KEYS
        };
        let fields = self.fields(node, path, known, "a property condition")?;
        let property = self
            .required(&fields, path, name_key)
            .and_then(|n| self.non_empty_string(n, &path.key(name_key)));
        let operator = self.required(&fields, path, "operator").and_then(|n| {
            let op_path = path.key("operator");
            let text = self.string(n, &op_path)?;
            let op = PropertyOperator::parse(&text);
            if op.is_none() {
                self.error(n, &op_path, format!("unknown operator `{text}`"));
            }
            op
        })?;
        let operand = self.operand(operator, fields.present("operand"), node, path)?;
        let condition = PropertyCondition::new(property?, operator, operand);
        if operator == PropertyOperator::Regex
            && condition.regex.is_none()
            && let Some(operand) = &condition.operand
            && let Some((pattern, flags)) = regex_parts(operand)
            && let Err(message) = compile_regex(&pattern, &flags)
        {
            let at = fields.present("operand").unwrap_or(node);
            self.warning(
                at,
                &path.key("operand"),
                format!(
                    "`{pattern}` is not a valid regular expression ({message}); \
                     the condition never matches"
                ),
            );
        }
        Some(condition)
    }

    /// Checks operand arity and types for `operator`. `Some(None)` is "no operand".
    fn operand(
        &mut self,
        operator: PropertyOperator,
        operand: Option<&Node>,
        parent: &Node,
        parent_path: &FieldPath,
    ) -> Option<Option<Operand>> {
        let path = parent_path.key("operand");
        let op = operator.as_str();
        let Some(node) = operand else {
            return match operator {
                PropertyOperator::IsUndefined
                | PropertyOperator::IsTrue
                | PropertyOperator::IsFalse => Some(None),
                _ => {
                    self.error(
                        parent,
                        parent_path,
                        format!("operator `{op}` needs an `operand`"),
                    );
                    None
                }
            };
        };
        match operator {
            PropertyOperator::IsUndefined
            | PropertyOperator::IsTrue
            | PropertyOperator::IsFalse => {
                self.warning(
                    node,
                    &path,
                    format!("operator `{op}` takes no operand; it is ignored"),
                );
                Some(None)
            }
            PropertyOperator::Eq | PropertyOperator::Ne => match &node.kind {
                Kind::Str(s) => Some(Some(Operand::Scalar(OperandValue::String(s.clone())))),
                Kind::Int(_) | Kind::Float(_) => {
                    Some(Some(Operand::Scalar(OperandValue::Number(number(node)))))
                }
                Kind::Bool(b) => Some(Some(Operand::Scalar(OperandValue::Bool(*b)))),
                _ => {
                    self.error(
                        node,
                        &path,
                        format!(
                            "operator `{op}` needs one string or number, found {}",
                            node.type_name()
                        ),
                    );
                    None
                }
            },
            PropertyOperator::Gt
            | PropertyOperator::Gte
            | PropertyOperator::Lt
            | PropertyOperator::Lte => match &node.kind {
                Kind::Int(_) | Kind::Float(_) => {
                    Some(Some(Operand::Scalar(OperandValue::Number(number(node)))))
                }
                Kind::Str(s) if parse_js_number(s).is_some() => {
                    self.warning(
                        node,
                        &path,
                        format!("operator `{op}` compares numbers; write `{s}` unquoted"),
                    );
                    Some(Some(Operand::Scalar(OperandValue::String(s.clone()))))
                }
                _ => {
                    self.error(
                        node,
                        &path,
                        format!(
                            "operator `{op}` needs one number, found {}",
                            node.type_name()
                        ),
                    );
                    None
                }
            },
            _ if operator.is_semver() => {
                let s = self.string_like(node, &path, true)?;
                Some(Some(Operand::Scalar(OperandValue::String(s))))
            }
            PropertyOperator::InArray => {
                let Kind::Seq(items) = &node.kind else {
                    self.error(
                        node,
                        &path,
                        format!(
                            "operator `in-array` needs a list of strings or numbers, found {}",
                            node.type_name()
                        ),
                    );
                    return None;
                };
                if items.is_empty() {
                    self.error(
                        node,
                        &path,
                        "`in-array` needs at least one value".to_owned(),
                    );
                    return None;
                }
                let mut values: Vec<OperandValue> = Vec::new();
                let mut ok = true;
                for (idx, item) in items.iter().enumerate() {
                    let item_path = path.index(idx);
                    self.source.record(&item_path, item.position);
                    let value = match &item.kind {
                        Kind::Str(s) => OperandValue::String(s.clone()),
                        Kind::Int(_) | Kind::Float(_) => OperandValue::Number(number(item)),
                        _ => {
                            self.error(
                                item,
                                &item_path,
                                format!("expected a string or number, found {}", item.type_name()),
                            );
                            ok = false;
                            continue;
                        }
                    };
                    if values.contains(&value) {
                        self.error(item, &item_path, "duplicate `in-array` value".to_owned());
                        ok = false;
                    }
                    values.push(value);
                }
                ok.then_some(Some(Operand::List(values)))
            }
            PropertyOperator::Regex => match &node.kind {
                Kind::Str(s) => Some(Some(Operand::Scalar(OperandValue::String(s.clone())))),
                Kind::Seq(items) if (1..=2).contains(&items.len()) => {
                    let mut values = Vec::new();
                    for (idx, item) in items.iter().enumerate() {
                        let item_path = path.index(idx);
                        self.source.record(&item_path, item.position);
                        values.push(OperandValue::String(self.string(item, &item_path)?));
                    }
                    if let Some(OperandValue::String(flags)) = values.get(1)
                        && let Some(bad) = flags.chars().find(|c| !"imsU".contains(*c))
                    {
                        self.error(
                            node,
                            &path.index(1),
                            format!("unknown regex flag `{bad}` (allowed: i, m, s, U)"),
                        );
                        return None;
                    }
                    Some(Some(Operand::List(values)))
                }
                _ => {
                    self.error(
                        node,
                        &path,
                        "operator `regex` needs a pattern, or a list of a pattern and flags"
                            .to_owned(),
                    );
                    None
                }
            },
            _ => None,
        }
    }

    fn value_spec(&mut self, node: &Node, path: &FieldPath) -> Option<ValueSpec> {
        self.source.record(path, node.position);
        match &node.kind {
            Kind::Null => Some(ValueSpec::Null),
            Kind::Bool(b) => Some(ValueSpec::Single(FlagValue::Bool(*b))),
            Kind::Str(s) => Some(ValueSpec::Single(FlagValue::String(s.clone()))),
            Kind::Int(_) | Kind::Float(_) => {
                Some(ValueSpec::Single(FlagValue::Number(number(node))))
            }
            Kind::Seq(items) => {
                let scheduled = items.iter().any(|item| lookup(item, "from").is_some());
                if scheduled {
                    self.scheduled(items, path).map(ValueSpec::Scheduled)
                } else {
                    self.split(items, path).map(ValueSpec::Split)
                }
            }
            Kind::Map(_) => {
                self.error(
                    node,
                    path,
                    "expected a value, or a list of split or scheduled values, found a mapping \
                     (write split entries as a list: `- {percentage: 50, option: true}`)"
                        .to_owned(),
                );
                None
            }
        }
    }

    fn percentage(&mut self, fields: &Fields<'_>, path: &FieldPath) -> Option<Option<f64>> {
        let Some(node) = fields.present("percentage") else {
            return Some(None);
        };
        let p = path.key("percentage");
        match node.kind {
            Kind::Int(_) | Kind::Float(_) if (0.0..=100.0).contains(&number(node)) => {
                Some(Some(number(node)))
            }
            _ => {
                self.error(
                    node,
                    &p,
                    "percentage must be a number from 0 to 100".to_owned(),
                );
                None
            }
        }
    }

    fn split(&mut self, items: &[Node], path: &FieldPath) -> Option<Vec<SplitValue>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (idx, item) in items.iter().enumerate() {
            let item_path = path.index(idx);
            let Some(fields) = self.fields(item, &item_path, VALUE_ENTRY_KEYS, "a split value")
            else {
                ok = false;
                continue;
            };
            let percentage = self.percentage(&fields, &item_path);
            let option = self
                .required(&fields, &item_path, "option")
                .and_then(|n| self.flag_value(n, &item_path.key("option")));
            match (percentage, option) {
                (Some(percentage), Some(option)) => out.push(SplitValue { percentage, option }),
                _ => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let sum: f64 = out.iter().map(SplitValue::effective_percentage).sum();
        if sum > 100.0 + PERCENT_EPSILON {
            let at = items.first().map_or(Position::START, |n| n.position);
            self.diagnostics.push(Diagnostic::error(
                self.source.file(),
                at,
                path.clone(),
                format!(
                    "split percentages sum to {}, more than 100",
                    crate::value::js_number_to_string(sum)
                ),
            ));
            return None;
        }
        Some(out)
    }

    fn scheduled(&mut self, items: &[Node], path: &FieldPath) -> Option<Vec<ScheduledValue>> {
        let mut out: Vec<ScheduledValue> = Vec::new();
        let mut ok = true;
        for (idx, item) in items.iter().enumerate() {
            let item_path = path.index(idx);
            let Some(fields) = self.fields(item, &item_path, VALUE_ENTRY_KEYS, "a scheduled value")
            else {
                ok = false;
                continue;
            };
            let from = match fields.get("from") {
                Some(n) => self.schedule_time(n, &item_path.key("from")),
                None => {
                    self.error(
                        item,
                        &item_path,
                        "missing `from`: a value list must not mix split and scheduled entries"
                            .to_owned(),
                    );
                    None
                }
            };
            let percentage = self.percentage(&fields, &item_path);
            let option = match fields.present("option") {
                Some(n) => match n.kind {
                    Kind::Bool(b) => Some(Some(b)),
                    _ => {
                        self.error(
                            n,
                            &item_path.key("option"),
                            format!(
                                "a scheduled option must be true or false, found {}",
                                n.type_name()
                            ),
                        );
                        None
                    }
                },
                None => Some(None),
            };
            match (from, percentage, option) {
                (Some(from), Some(percentage), Some(option)) => {
                    if let Some(prev) = out.last()
                        && prev.from.at > from.at
                    {
                        self.warning(
                            item,
                            &item_path.key("from"),
                            "scheduled values are not in time order; the latest `from` before \
                             now applies regardless of order"
                                .to_owned(),
                        );
                    }
                    out.push(ScheduledValue {
                        from,
                        percentage,
                        option,
                    });
                }
                _ => ok = false,
            }
        }
        if out
            .iter()
            .filter_map(|s| s.option)
            .collect::<HashSet<_>>()
            .len()
            > 1
        {
            self.diagnostics.push(self.source.error(
                path.clone(),
                "all entries of a schedule must have the same `option`".to_owned(),
            ));
            return None;
        }
        ok.then_some(out)
    }

    fn schedule_time(&mut self, node: &Node, path: &FieldPath) -> Option<ScheduleTime> {
        let text = self.string(node, path)?;
        match parse_schedule_time(&text) {
            Some(at) => Some(ScheduleTime { text, at }),
            None => {
                self.error(
                    node,
                    path,
                    format!("`{text}` is not an ISO-8601 date or date-time"),
                );
                None
            }
        }
    }

    fn target_group(&mut self, root: &Node) -> Option<TargetGroup> {
        let path = FieldPath::root();
        let fields = self.fields(root, &path, TARGET_GROUP_KEYS, "a target group")?;
        let name = self
            .required(&fields, &path, "name")
            .and_then(|n| self.non_empty_string(n, &path.key("name")));
        let version = self.optional(&fields, &path, "version", |r, n, p| {
            r.string_like(n, p, false)
        });
        let description = self.optional(&fields, &path, "description", Self::string);
        let operator = self.optional(&fields, &path, "operator", |r, n, p| {
            let text = r.string(n, p)?;
            match text.as_str() {
                "and" => Some(GroupJoin::And),
                "or" => Some(GroupJoin::Or),
                _ => {
                    r.error(
                        n,
                        p,
                        format!("unknown target group operator `{text}` (expected and or or)"),
                    );
                    None
                }
            }
        });
        let mut conditions = Vec::new();
        match fields.present("conditions") {
            Some(node) => {
                let cpath = path.key("conditions");
                if let Some(items) = self.list(node, &cpath, "conditions") {
                    for (idx, item) in items.iter().enumerate() {
                        conditions.extend(self.property_condition(
                            item,
                            &cpath.index(idx),
                            "property",
                        ));
                    }
                }
            }
            None => self.warning(root, &path, "target group has no conditions".to_owned()),
        }
        Some(TargetGroup {
            version,
            name: name?,
            description,
            operator,
            conditions,
            source: self.source.clone(),
        })
    }
}

fn number(node: &Node) -> f64 {
    match node.kind {
        Kind::Int(i) => i as f64,
        Kind::Float(f) => f,
        _ => f64::NAN,
    }
}

fn number_text(node: &Node) -> String {
    match node.kind {
        Kind::Int(i) => i.to_string(),
        _ => crate::value::js_number_to_string(number(node)),
    }
}

/// A string as JavaScript's `Number()` would read it, for numeric comparisons; `None` when it
/// is not a finite number (the empty string is not a number here).
pub(crate) fn parse_js_number(text: &str) -> Option<f64> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return None;
    }
    trimmed.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Reads a `from` time: RFC 3339 / ISO-8601 with offset, or a civil date-time or date taken
/// as UTC.
pub(crate) fn parse_schedule_time(text: &str) -> Option<jiff::Timestamp> {
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp());
    }
    None
}

/// Pattern and flags of a `regex` operand.
pub(crate) fn regex_parts(operand: &Operand) -> Option<(String, String)> {
    let text = |v: &OperandValue| match v {
        OperandValue::String(s) => Some(s.clone()),
        _ => None,
    };
    match operand {
        Operand::Scalar(v) => Some((text(v)?, String::new())),
        Operand::List(items) => {
            let pattern = text(items.first()?)?;
            let flags = match items.get(1) {
                Some(v) => text(v)?,
                None => String::new(),
            };
            Some((pattern, flags))
        }
    }
}

/// Compiles a pattern with RE2 semantics (Go's `regexp`, which the rox SDK uses): unanchored,
/// flags as an inline `(?flags)` prefix.
pub(crate) fn compile_regex(pattern: &str, flags: &str) -> Result<CompiledRegex, String> {
    let source = if flags.is_empty() {
        pattern.to_owned()
    } else {
        format!("(?{flags}){pattern}")
    };
    regex::RegexBuilder::new(&source)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(|re| CompiledRegex(Arc::new(re)))
        .map_err(|err| match err {
            regex::Error::Syntax(message) => message
                .lines()
                .last()
                .unwrap_or("syntax error")
                .trim_start_matches("error: ")
                .to_owned(),
            regex::Error::CompiledTooBig(_) => "pattern is too large".to_owned(),
            _ => "invalid pattern".to_owned(),
        })
}
