//! Evaluation of Test Pilot flights: does this client fly this flight now?
//!
//! [`evaluate`] gives one [`ItemResult`] per flight, kind `flight`, `id` = the studyname,
//! `branch` and `value` `None` (flights have no arms). The first failing check gives the
//! reason, in this order:
//!
//! | reason | when |
//! |---|---|
//! | `killed` | `kill` / `stopflight` is true |
//! | `endBy` | the deadline has passed (`now ≥ deadline`); a relative deadline counts from when the client first saw the flight (below) |
//! | `filter-channel`, `filter-os`, `filter-locale`, `filter-version` | the context value is missing or not in the list |
//! | `filter-expression` | the filter expression is falsy |
//! | `filter-error: <message>` | the filter expression could not be evaluated |
//! | `randomDeploy` | the client's random value for `keyname` is outside `[ge, lt)`, or the client has none |
//!
//! A flight validation rejected ([`FlightsIndex::rejected`]) gets `reason: "invalid: <first
//! error>"` in its place in the index; its `id` is its studyname when readable, else
//! `<file>#<index>` (the 0-based place in the list of flights).
//!
//! A client without a random value for the key name cannot be placed, so it does not fly
//! (the client runtime draws and persists one per key name before evaluating).
//! The random value is read from `facts.random_values`, then from the context's
//! `randomValues`.
//!
//! "First seen": the client runtime records when it first saw each flight as a
//! [`crate::evaluate::StartedExperiment`] under the flight's name in
//! `facts.started_experiments`; without such a record the flight is being seen now, so a
//! relative deadline has not passed.

use super::{EvalInput, ItemResult, in_source_order, rejected_result, valid_places};
use crate::context::filter_vars;
use crate::model::testpilot::{Deadline, FilterList, Flight, FlightsIndex};
use crate::sampling;
use crate::value::Value;

/// The `kind` of every [`ItemResult`] produced here.
pub const KIND: &str = "flight";

/// Evaluates every flight of the index, the rejected ones included, in index order.
pub fn evaluate(index: &FlightsIndex, input: &EvalInput<'_>) -> Vec<ItemResult> {
    let valid = index.flights.iter().map(|flight| {
        let reason = reject_reason(flight, input);
        ItemResult {
            id: flight.studyname.clone(),
            kind: KIND.to_owned(),
            matched: reason.is_none(),
            reason,
            branch: None,
            value: None,
        }
    });
    let invalid = index
        .rejected
        .iter()
        .map(|item| {
            let result = rejected_result(item, KIND, || format!("{}#{}", item.file, item.index));
            (item.index, result)
        })
        .collect();
    in_source_order(valid_places(&index.rejected).zip(valid).collect(), invalid)
}

/// When the flight ends for this client: `None` for a deadline that cannot be represented.
pub fn deadline_for(flight: &Flight, input: &EvalInput<'_>) -> Option<jiff::Timestamp> {
    match flight.end_by.deadline {
        Deadline::At(at) => Some(at),
        Deadline::AfterFirstSeen(ms) => {
            let first_seen = input
                .facts
                .started_experiments
                .get(&flight.studyname)
                .map_or(input.now, |started| started.start_time);
            // Durations are below 10^11 ms, so the cast is exact.
            let span = jiff::SignedDuration::from_millis(ms.round() as i64);
            first_seen.checked_add(span).ok()
        }
    }
}

fn reject_reason(flight: &Flight, input: &EvalInput<'_>) -> Option<String> {
    if flight.is_killed() {
        return Some("killed".to_owned());
    }
    // A deadline beyond the representable range never passes.
    if deadline_for(flight, input).is_some_and(|end| input.now >= end) {
        return Some("endBy".to_owned());
    }
    if let Some(filter) = &flight.filter {
        let context = input.context;
        let lists: [(&Option<FilterList>, &Option<String>, &str); 4] = [
            (&filter.channels, &context.channel, "filter-channel"),
            (&filter.oses, &context.os, "filter-os"),
            (&filter.locales, &context.locale, "filter-locale"),
            (&filter.versions, &context.version, "filter-version"),
        ];
        for (list, actual, reason) in lists {
            if let Some(list) = list {
                let found = actual
                    .as_ref()
                    .is_some_and(|a| list.values.iter().any(|v| v == a));
                if !found {
                    return Some(reason.to_owned());
                }
            }
        }
        if let Some(expression) = &filter.expression {
            let environment = context.filter_environment(input.now);
            let recipe = Value::object(
                [(std::sync::Arc::from("id"), Value::string(&flight.studyname))]
                    .into_iter()
                    .collect(),
            );
            let vars = filter_vars(&environment, Some(recipe));
            match expression.compiled.eval(&vars, &context.prefs) {
                Ok(result) if result.is_truthy() => {}
                Ok(_) => return Some("filter-expression".to_owned()),
                Err(err) => return Some(format!("filter-error: {}", err.message)),
            }
        }
    }
    if let Some(deploy) = &flight.random_deploy {
        let value = input
            .facts
            .random_values
            .get(&deploy.keyname)
            .or_else(|| input.context.random_values.get(&deploy.keyname));
        let inside = value.is_some_and(|v| sampling::uniform_in_range(*v, deploy.ge, deploy.lt));
        if !inside {
            return Some("randomDeploy".to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests;
