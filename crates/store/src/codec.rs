//! How values are represented in columns, the same for both backends: times as epoch
//! microseconds, JSON as text, roles as a comma-separated list, days as `YYYY-MM-DD`.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::Value;

use crate::error::{Result, StoreError};
use crate::model::{ApprovalState, Kind, Role};

/// The column value of a time. Sub-microsecond digits are dropped, so every time the store
/// returns is read back from what it stored.
pub(crate) fn micros(time: Timestamp) -> i64 {
    time.as_microsecond()
}

pub(crate) fn timestamp(micros: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(micros).map_err(|err| corrupt("time", err))
}

pub(crate) fn optional_timestamp(micros: Option<i64>) -> Result<Option<Timestamp>> {
    micros.map(timestamp).transpose()
}

/// Roles sorted and deduplicated, so equal sets are stored alike.
pub(crate) fn roles_text(roles: &[Role]) -> String {
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    let names: Vec<&str> = roles.into_iter().map(Role::as_str).collect();
    names.join(",")
}

pub(crate) fn parse_roles(text: &str) -> Result<Vec<Role>> {
    text.split(',')
        .filter(|name| !name.is_empty())
        .map(|name| Role::parse(name).ok_or_else(|| corrupt("role", name)))
        .collect()
}

pub(crate) fn parse_kind(text: &str) -> Result<Kind> {
    Kind::parse(text).ok_or_else(|| corrupt("kind", text))
}

pub(crate) fn parse_approval_state(text: &str) -> Result<ApprovalState> {
    ApprovalState::parse(text).ok_or_else(|| corrupt("approval state", text))
}

/// JSON text as serde_json writes it: the authors' key order is kept.
pub(crate) fn json_text(value: &Value) -> Result<String> {
    serde_json::to_string(value).map_err(|err| corrupt("JSON", err))
}

pub(crate) fn parse_json(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|err| corrupt("JSON", err))
}

/// Whether two documents have the same canonical JSON form: object key order does not
/// matter, and numbers are equal when they denote the same number (`1` and `1.0`), as
/// canonical JSON writes numbers the way JavaScript does.
pub(crate) fn same_json(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => {
            match (left.as_i64(), right.as_i64(), left.as_u64(), right.as_u64()) {
                (Some(left), Some(right), _, _) => left == right,
                (_, _, Some(left), Some(right)) => left == right,
                _ => left.as_f64() == right.as_f64(),
            }
        }
        (Value::Array(left), Value::Array(right)) => {
            left.len() == right.len()
                && left
                    .iter()
                    .zip(right)
                    .all(|(left, right)| same_json(left, right))
        }
        (Value::Object(left), Value::Object(right)) => {
            left.len() == right.len()
                && left
                    .iter()
                    .all(|(key, left)| right.get(key).is_some_and(|right| same_json(left, right)))
        }
        _ => left == right,
    }
}

/// The UTC day of a time, as stored in `enrollment_counts.day`.
pub(crate) fn utc_day(time: Timestamp) -> String {
    time.to_zoned(TimeZone::UTC).date().to_string()
}

pub(crate) fn day_text(day: Date) -> String {
    day.to_string()
}

pub(crate) fn parse_day(text: &str) -> Result<Date> {
    text.parse().map_err(|err| corrupt("day", err))
}

/// A client's sequence number in a signed 64-bit column: a bijection (two's complement), so
/// deduplication by `(client_id, seq)` holds for every `u64`.
pub(crate) fn seq_column(seq: u64) -> i64 {
    i64::from_ne_bytes(seq.to_ne_bytes())
}

pub(crate) fn limit_column(limit: Option<u32>) -> i64 {
    limit.map_or(i64::MAX, i64::from)
}

fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn same_json_ignores_key_order_and_number_spelling() {
        assert!(same_json(
            &json!({"a": 1, "b": [1.0, {"c": null}]}),
            &serde_json::from_str(r#"{"b": [1, {"c": null}], "a": 1.0}"#).unwrap()
        ));
        assert!(!same_json(&json!({"a": 1}), &json!({"a": 2})));
        assert!(!same_json(&json!({"a": 1}), &json!({"a": 1, "b": 1})));
        assert!(!same_json(&json!([1, 2]), &json!([2, 1])));
        assert!(!same_json(&json!("1"), &json!(1)));
        assert!(same_json(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!same_json(&json!(-1), &json!(u64::MAX)));
    }

    #[test]
    fn roles_are_stored_sorted_once() {
        let text = roles_text(&[Role::Admin, Role::Viewer, Role::Admin]);
        assert_eq!(text, "viewer,admin");
        assert_eq!(parse_roles(&text).unwrap(), [Role::Viewer, Role::Admin]);
        assert_eq!(parse_roles("").unwrap(), []);
        assert!(parse_roles("root").is_err());
    }

    #[test]
    fn days_are_utc() {
        let time: Timestamp = "2026-03-01T23:30:00-02:00".parse().unwrap();
        assert_eq!(utc_day(time), "2026-03-02");
        assert_eq!(
            parse_day("2026-03-02").unwrap(),
            jiff::civil::date(2026, 3, 2)
        );
    }

    #[test]
    fn sequence_numbers_map_one_to_one() {
        assert_eq!(seq_column(0), 0);
        assert_eq!(seq_column(u64::MAX), -1);
        assert_ne!(seq_column(1 << 63), seq_column((1 << 63) - 1));
    }
}
