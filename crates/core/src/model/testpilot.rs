//! Test Pilot 2 flights index (seed 001): the control tower's list of flights.
//!
//! # Index shape
//! The index is JSON: either an array of flight specifications, or an object
//! `{"flights": [...]}` (other members are warned about and dropped). [`to_json`] writes the
//! shape that was read.
//!
//! # Flight specification
//! The document's keys, and the reference implementation's renamed keys as aliases; both
//! spellings parse into one model, the spelling used is remembered for [`to_json`], and giving
//! both spellings of one field is an error:
//!
//! | document | reference alias | rule |
//! |---|---|---|
//! | `studyname` | `name` | required, non-empty string; unique in the index |
//! | `endBy` | `end` | required (every flight must end); see [`Deadline`] |
//! | `kill` | `stopflight` | optional boolean |
//! | `version` | `specversion` | optional: a number > 0, or (document spelling only) a non-empty string |
//! | `randomDeploy {keyname, ge, lt}` | `randomsubset {key, range: [lo, hi]}` | `0 ≤ ge < lt ≤ 1`; either inner form is accepted under either key |
//! | `author`, `description`, `infourl` | — | optional non-empty strings |
//! | `filter` | — | see [`FlightFilter`] |
//! | `flightplan` | — | see [`FlightPlan`] |
//!
//! Unknown keys are warnings. A flight with an error is left out of the index (the others are
//! kept) and recorded in [`FlightsIndex::rejected`]; the index itself is `None` only when its
//! shape is wrong or the text is not JSON.
//!
//! # Templates
//! Strings in directives (`url`, `title`, `text`, `msg`, `topic`, `subject`, string `data`)
//! may hold mustache placeholders `{{name}}`. An unclosed or empty placeholder is an error;
//! a name outside [`TEMPLATE_VARIABLES`] is a warning. [`render_template`] fills them in.

mod emit;
mod parse;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::jexl::Expression;
use crate::model::{Parsed, RejectedItem};

pub use emit::to_json;

/// The variables flight templates know: the flight's own (`studyname`, `studyid`,
/// `starttime`, `status`, `step`) and the "people config" of the document (`personid`, `os`,
/// `locale`, `channel`, `version`, `appname`).
pub const TEMPLATE_VARIABLES: &[&str] = &[
    "studyname",
    "studyid",
    "starttime",
    "status",
    "step",
    "personid",
    "os",
    "locale",
    "channel",
    "version",
    "appname",
];

/// The parsed flights index.
#[derive(Debug, Clone, PartialEq)]
pub struct FlightsIndex {
    /// How the index was written.
    pub shape: IndexShape,
    /// The valid flights, in index order.
    pub flights: Vec<Flight>,
    /// The flights validation rejected, in index order, so that evaluation can report them.
    /// Not written by [`to_json`].
    pub rejected: Vec<RejectedItem>,
}

/// The two accepted index shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexShape {
    /// A bare JSON array of flights.
    Array,
    /// `{"flights": [...]}`.
    Object,
}

/// Which of the two spellings a key was written with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyStyle {
    /// The design document's spelling (`studyname`, `endBy`, `kill`, …).
    #[default]
    Document,
    /// The reference implementation's spelling (`name`, `end`, `stopflight`, …).
    Reference,
}

/// The spelling of every aliased flight key, so that output matches input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spelling {
    /// `studyname` / `name`.
    pub studyname: KeyStyle,
    /// `endBy` / `end`.
    pub end_by: KeyStyle,
    /// `kill` / `stopflight`.
    pub kill: KeyStyle,
    /// `version` / `specversion`.
    pub version: KeyStyle,
    /// `randomDeploy` / `randomsubset`.
    pub random_deploy: KeyStyle,
}

/// One flight specification.
#[derive(Debug, Clone, PartialEq)]
pub struct Flight {
    /// The flight's name, its identity in the control tower and on clients.
    pub studyname: String,
    /// Who wrote it.
    pub author: Option<String>,
    /// What it does.
    pub description: Option<String>,
    /// Where to read about the study and its risks.
    pub infourl: Option<String>,
    /// Spec or study version.
    pub version: Option<SpecVersion>,
    /// When the flight must be over (the second kill switch).
    pub end_by: EndBy,
    /// The kill switch: end and undo any run of this flight.
    pub kill: Option<bool>,
    /// Who the flight is for.
    pub filter: Option<FlightFilter>,
    /// Which share of the filtered clients gets it.
    pub random_deploy: Option<RandomDeploy>,
    /// What happens during the flight.
    pub flightplan: Option<FlightPlan>,
    /// How the aliased keys were spelled.
    pub spelling: Spelling,
}

impl Flight {
    /// `kill`, default false.
    pub fn is_killed(&self) -> bool {
        self.kill.unwrap_or(false)
    }
}

/// `version` / `specversion`.
#[derive(Debug, Clone, PartialEq)]
pub enum SpecVersion {
    /// A number > 0.
    Number(f64),
    /// A version string (document spelling only).
    Text(String),
}

/// `endBy` / `end`: when the flight ends, and how it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct EndBy {
    /// The interpreted deadline.
    pub deadline: Deadline,
    /// The JSON value as written, for output.
    pub written: serde_json::Value,
}

/// When a flight ends.
///
/// The document calls `endBy` a timestamp ("ts"), the reference implementation a duration in
/// milliseconds (its test uses `2592000000`, 30 days). Both are accepted and told apart by
/// size: a number ≥ 10¹¹ is an instant in epoch milliseconds (10¹¹ ms is March 1973, and
/// 3.2 years as a duration), a smaller positive number is a duration after the client first
/// saw the flight. Strings are instants: ISO-8601 / RFC 3339 (`2012-04-23T18:25:43.511Z`; a
/// date or date-time without offset is read as UTC, where JavaScript would use local time),
/// RFC 2822, and the day-month-year forms JavaScript's `Date` parses (`11 March 2020`,
/// `March 11, 2020`, `Wed, 11 Mar 2020 10:00`), also as UTC. The reference's object form
/// `{"value": n}` is read like the number `n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Deadline {
    /// Ends at this instant.
    At(jiff::Timestamp),
    /// Ends this many milliseconds after the client first saw the flight.
    AfterFirstSeen(f64),
}

/// Numbers from this value on are instants (epoch ms), below it durations (ms).
pub const ABSOLUTE_TIME_THRESHOLD_MS: f64 = 1e11;

/// `filter`: who the flight is for. All given parts must hold.
///
/// `channels`, `oses`, `locales`, `versions` (or the singular reference keys `channel`, `os`,
/// `locale`, `version`) are lists of strings compared exactly (case-sensitively) with the
/// context's `channel`, `os`, `locale` and `version`; a client without that context value does
/// not match, and an empty list matches nobody (a warning). `expression` is a filter
/// expression in the Normandy filter language, evaluated with the same variables as Normandy
/// filters (`normandy.*` / `env.*`, with `recipe = {id: <studyname>}`); it must parse.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlightFilter {
    /// Update channels.
    pub channels: Option<FilterList>,
    /// Operating systems.
    pub oses: Option<FilterList>,
    /// Locales.
    pub locales: Option<FilterList>,
    /// Application versions (exact strings).
    pub versions: Option<FilterList>,
    /// A filter expression.
    pub expression: Option<FilterExpression>,
}

/// One list of a filter, with the spelling of its key.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterList {
    /// Accepted values.
    pub values: Vec<String>,
    /// Plural (document) or singular (reference) key.
    pub style: KeyStyle,
}

/// A parsed filter expression. Equal when the sources are equal.
#[derive(Debug, Clone)]
pub struct FilterExpression {
    /// The expression as written.
    pub source: String,
    /// The compiled expression.
    pub compiled: Expression,
}

impl PartialEq for FilterExpression {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// `randomDeploy` / `randomsubset`: deploy iff `ge ≤ value < lt`, where `value` is the
/// client's persisted uniform random value for `keyname`. Flights sharing a key name get
/// disjoint or overlapping slices of the same clients by construction.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomDeploy {
    /// The name of the persisted random value.
    pub keyname: String,
    /// Lower bound, inclusive, in [0, 1).
    pub ge: f64,
    /// Upper bound, exclusive, in (0, 1].
    pub lt: f64,
    /// `{keyname, ge, lt}` (document) or `{key, range: [lo, hi]}` (reference).
    pub form: KeyStyle,
}

/// A flight plan: steps run in order, each after the previous resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlightPlan {
    /// The steps.
    pub steps: Vec<PlanStep>,
}

/// One step of a flight plan.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanStep {
    /// A directive object: run it.
    Single(Directive),
    /// A list of directives: run them in parallel and wait for all.
    Parallel(Vec<Directive>),
}

/// One directive (`{"action": ..., ...}`).
#[derive(Debug, Clone, PartialEq)]
pub enum Directive {
    /// `wait`: until an instant, or for a duration.
    Wait(Wait),
    /// `ping`: an HTTP request to a URL template.
    Ping(Ping),
    /// `external` / `ui` / `ask`: show a survey or message.
    Ui {
        /// The action name as written.
        action: UiAction,
        /// Its parameters.
        spec: UiDirective,
    },
    /// `addon`: install, uninstall or ensure an add-on.
    Addon(AddonDirective),
    /// `observe`: resolve on the first matching observer notification.
    Observe(Observe),
    /// `notify` / `emitevent`: send an observer notification (once).
    Notify {
        /// The action name as written.
        action: NotifyAction,
        /// Its parameters.
        spec: NotifyDirective,
    },
    /// `log` / `status` / `message`: record a message on the flight.
    Message {
        /// The action name as written.
        action: MessageAction,
        /// The message.
        msg: Template,
    },
    /// `copilot` / `micropilot` / `instrument`: options for the instrumentation study type,
    /// passed through unchecked.
    Instrument {
        /// The action name as written.
        action: InstrumentAction,
        /// Every member except `action`.
        options: serde_json::Map<String, serde_json::Value>,
    },
}

/// `wait`.
#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    /// `until`: an instant (epoch ms, or a date string as for `endBy`).
    Until {
        /// The instant.
        at: jiff::Timestamp,
        /// As written.
        written: serde_json::Value,
    },
    /// `for` (or the reference's `time`): milliseconds.
    For {
        /// Duration in ms (≥ 0).
        ms: f64,
        /// Whether it was written as `time`.
        reference_key: bool,
    },
}

/// `ping`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ping {
    /// The URL template.
    pub url: Template,
    /// The HTTP method (default GET).
    pub method: Option<HttpMethod>,
    /// A body to send.
    pub data: Option<serde_json::Value>,
}

/// HTTP method of a `ping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
}

/// The name a UI directive was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum UiAction {
    External,
    Ui,
    Ask,
}

/// `external` / `ui` / `ask` parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UiDirective {
    /// Page to show (URL template).
    pub url: Option<Template>,
    /// Survey or message (or the reference's `warn`).
    pub kind: Option<UiKind>,
    /// Title.
    pub title: Option<Template>,
    /// Body text.
    pub text: Option<Template>,
    /// The answer that resolves the step (`ok`, …).
    pub wait_for: Option<String>,
}

/// `type` of a UI directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum UiKind {
    Survey,
    Message,
    Warn,
}

/// `addon` parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddonDirective {
    /// What to do (default install).
    pub operation: Option<AddonOperation>,
    /// Add-on id (required to uninstall).
    pub id: Option<String>,
    /// Where to get it (URL template); install/ensure need `url` or `path`.
    pub url: Option<Template>,
    /// A local path instead of a URL.
    pub path: Option<String>,
    /// Whether to warn or notify the user.
    pub permission: Option<AddonPermission>,
    /// The message shown.
    pub msg: Option<Template>,
}

/// `do` of an `addon` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum AddonOperation {
    Install,
    Uninstall,
    Ensure,
}

/// `permission` of an `addon` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum AddonPermission {
    Warn,
    Notify,
}

/// `observe`: at least one of topic and subject.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observe {
    /// Observer topic.
    pub topic: Option<Template>,
    /// Subject that must match, when given.
    pub subject: Option<Template>,
}

/// The name a notify directive was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum NotifyAction {
    Notify,
    EmitEvent,
}

/// `notify` / `emitevent` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyDirective {
    /// Observer topic (required).
    pub topic: Template,
    /// Subject.
    pub subject: Option<Template>,
    /// Data.
    pub data: Option<serde_json::Value>,
}

/// The name a message directive was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum MessageAction {
    Log,
    Status,
    Message,
}

/// The name an instrumentation directive was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum InstrumentAction {
    Copilot,
    Micropilot,
    Instrument,
}

/// A string with mustache placeholders, checked when parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub String);

impl Template {
    /// The placeholder names, in order (with repetitions).
    pub fn variables(&self) -> Vec<&str> {
        parse::template_parts(&self.0)
            .map(|parts| {
                parts
                    .into_iter()
                    .filter_map(|p| match p {
                        parse::TemplatePart::Variable(v) => Some(v),
                        parse::TemplatePart::Text(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fills in the placeholders (see [`render_template`]).
    pub fn render(&self, vars: &BTreeMap<String, String>) -> String {
        render_template(&self.0, vars)
    }
}

/// Replaces each `{{name}}` (also `{{ name }}` and `{{{name}}}`) by `vars[name]`, or by
/// nothing when `vars` has no such name, as mustache does. Text with a malformed
/// placeholder is returned unchanged.
pub fn render_template(template: &str, vars: &BTreeMap<String, String>) -> String {
    let Ok(parts) = parse::template_parts(template) else {
        return template.to_owned();
    };
    let mut out = String::with_capacity(template.len());
    for part in parts {
        match part {
            parse::TemplatePart::Text(t) => out.push_str(t),
            parse::TemplatePart::Variable(v) => {
                if let Some(value) = vars.get(v) {
                    out.push_str(value);
                }
            }
        }
    }
    out
}

/// Parses a flights index.
pub fn parse(file: &str, text: &str) -> Parsed<FlightsIndex> {
    parse::parse_index(file, text)
}

/// Reads a date-ish JSON value as [`Deadline`] (the rules of `endBy`).
pub fn parse_deadline(value: &serde_json::Value) -> Result<Deadline, String> {
    parse::deadline(value)
}

/// Reads a date string as `endBy` and `wait.until` do (see [`Deadline`]).
pub fn parse_date_string(text: &str) -> Option<jiff::Timestamp> {
    parse::date_string(text)
}
