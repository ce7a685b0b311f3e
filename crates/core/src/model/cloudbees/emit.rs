//! Writing experiments and target groups back to YAML.
//!
//! The document is first built as an ordered JSON tree (keys in the README's order, fields
//! that were absent stay absent) and then written by serde-saphyr's serializer, which quotes
//! every string that would otherwise read back as something else (`"true"`, `"1.0"`, `""`).

use serde_json::{Map, Value};

use super::{
    Condition, Experiment, FlagValue, OneOrMany, Operand, OperandValue, Platform,
    PropertyCondition, TargetGroup, ValueSpec,
};

/// Writes an experiment as YAML, in the layout of a configuration repository file.
pub fn to_yaml(experiment: &Experiment) -> String {
    let mut map = Map::new();
    if let Some(version) = &experiment.version {
        map.insert("version".into(), Value::String(version.clone()));
    }
    map.insert("type".into(), Value::String("experiment".into()));
    map.insert("flag".into(), Value::String(experiment.flag.clone()));
    insert_string(&mut map, "name", experiment.name.as_ref());
    insert_string(&mut map, "description", experiment.description.as_ref());
    if let Some(enabled) = experiment.enabled {
        map.insert("enabled".into(), Value::Bool(enabled));
    }
    if let Some(archived) = experiment.archived {
        map.insert("archived".into(), Value::Bool(archived));
    }
    if let Some(labels) = &experiment.labels {
        map.insert("labels".into(), one_or_many(labels));
    }
    if let Some(values) = &experiment.available_values {
        map.insert(
            "availableValues".into(),
            Value::Array(values.iter().map(FlagValue::to_json).collect()),
        );
    }
    insert_string(
        &mut map,
        "stickinessProperty",
        experiment.stickiness_property.as_ref(),
    );
    if let Some(platforms) = &experiment.platforms {
        map.insert(
            "platforms".into(),
            Value::Array(platforms.iter().map(platform).collect()),
        );
    }
    if let Some(conditions) = &experiment.conditions {
        map.insert("conditions".into(), conditions_json(conditions));
    }
    if let Some(value) = &experiment.value {
        map.insert("value".into(), value_spec(value));
    }
    write(&Value::Object(map))
}

/// Writes a target group as YAML.
pub fn target_group_to_yaml(group: &TargetGroup) -> String {
    let mut map = Map::new();
    if let Some(version) = &group.version {
        map.insert("version".into(), Value::String(version.clone()));
    }
    map.insert("type".into(), Value::String("target-group".into()));
    map.insert("name".into(), Value::String(group.name.clone()));
    insert_string(&mut map, "description", group.description.as_ref());
    if let Some(operator) = group.operator {
        map.insert("operator".into(), Value::String(operator.as_str().into()));
    }
    map.insert(
        "conditions".into(),
        Value::Array(
            group
                .conditions
                .iter()
                .map(|c| property_condition(c, "property"))
                .collect(),
        ),
    );
    write(&Value::Object(map))
}

/// A JSON number that prints as an integer when the value is one (`50`, not `50.0`).
pub(crate) fn json_number(n: f64) -> Value {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if n.fract() == 0.0 && n.abs() <= MAX_SAFE {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn write(value: &Value) -> String {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.compact_list_indent = false;
    // serde-saphyr serialises any JSON tree; if it ever refused one, JSON is valid YAML too.
    serde_saphyr::to_string_with_options(value, options)
        .or_else(|_| serde_json::to_string_pretty(value))
        .unwrap_or_default()
}

fn insert_string(map: &mut Map<String, Value>, key: &str, value: Option<&String>) {
    if let Some(value) = value {
        map.insert(key.into(), Value::String(value.clone()));
    }
}

fn one_or_many(value: &OneOrMany) -> Value {
    match value {
        OneOrMany::One(s) => Value::String(s.clone()),
        OneOrMany::Many(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
    }
}

fn platform(platform: &Platform) -> Value {
    let mut map = Map::new();
    map.insert("name".into(), Value::String(platform.name.clone()));
    insert_string(&mut map, "flag", platform.flag.as_ref());
    if let Some(conditions) = &platform.conditions {
        map.insert("conditions".into(), conditions_json(conditions));
    }
    if let Some(value) = &platform.value {
        map.insert("value".into(), value_spec(value));
    }
    Value::Object(map)
}

fn conditions_json(conditions: &[Condition]) -> Value {
    Value::Array(conditions.iter().map(condition).collect())
}

fn condition(condition: &Condition) -> Value {
    let mut map = Map::new();
    if let Some(dependency) = &condition.dependency {
        let mut dep = Map::new();
        dep.insert("flag".into(), Value::String(dependency.flag.clone()));
        dep.insert("value".into(), dependency.value.to_json());
        map.insert("dependency".into(), Value::Object(dep));
    }
    if let Some(group) = &condition.group {
        let mut g = Map::new();
        if let Some(operator) = group.operator {
            g.insert("operator".into(), Value::String(operator.as_str().into()));
        }
        g.insert("name".into(), one_or_many(&group.name));
        map.insert("group".into(), Value::Object(g));
    }
    if let Some(version) = &condition.version {
        let mut v = Map::new();
        v.insert(
            "operator".into(),
            Value::String(version.operator.as_str().into()),
        );
        v.insert("semver".into(), Value::String(version.semver.clone()));
        map.insert("version".into(), Value::Object(v));
    }
    if let Some(property) = &condition.property {
        map.insert("property".into(), property_condition(property, "name"));
    }
    if let Some(value) = &condition.value {
        map.insert("value".into(), value_spec(value));
    }
    Value::Object(map)
}

fn property_condition(condition: &PropertyCondition, name_key: &str) -> Value {
    let mut map = Map::new();
    map.insert(name_key.into(), Value::String(condition.property.clone()));
    map.insert(
        "operator".into(),
        Value::String(condition.operator.as_str().into()),
    );
    if let Some(operand) = &condition.operand {
        let value = match operand {
            Operand::Scalar(v) => operand_value(v),
            Operand::List(items) => Value::Array(items.iter().map(operand_value).collect()),
        };
        map.insert("operand".into(), value);
    }
    Value::Object(map)
}

fn operand_value(value: &OperandValue) -> Value {
    match value {
        OperandValue::String(s) => Value::String(s.clone()),
        OperandValue::Number(n) => json_number(*n),
        OperandValue::Bool(b) => Value::Bool(*b),
    }
}

fn value_spec(spec: &ValueSpec) -> Value {
    match spec {
        ValueSpec::Null => Value::Null,
        ValueSpec::Single(v) => v.to_json(),
        ValueSpec::Split(items) => Value::Array(
            items
                .iter()
                .map(|item| {
                    let mut map = Map::new();
                    if let Some(p) = item.percentage {
                        map.insert("percentage".into(), json_number(p));
                    }
                    map.insert("option".into(), item.option.to_json());
                    Value::Object(map)
                })
                .collect(),
        ),
        ValueSpec::Scheduled(items) => Value::Array(
            items
                .iter()
                .map(|item| {
                    let mut map = Map::new();
                    map.insert("from".into(), Value::String(item.from.text.clone()));
                    if let Some(p) = item.percentage {
                        map.insert("percentage".into(), json_number(p));
                    }
                    if let Some(option) = item.option {
                        map.insert("option".into(), Value::Bool(option));
                    }
                    Value::Object(map)
                })
                .collect(),
        ),
    }
}
