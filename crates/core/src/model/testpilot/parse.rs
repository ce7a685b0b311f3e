//! Validation of a flights index, collecting every problem with its position.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{
    ABSOLUTE_TIME_THRESHOLD_MS, AddonDirective, AddonOperation, AddonPermission, Deadline,
    Directive, EndBy, FilterExpression, FilterList, Flight, FlightFilter, FlightPlan, FlightsIndex,
    HttpMethod, IndexShape, InstrumentAction, KeyStyle, MessageAction, NotifyAction,
    NotifyDirective, Observe, Ping, PlanStep, RandomDeploy, SpecVersion, Spelling,
    TEMPLATE_VARIABLES, Template, UiAction, UiDirective, UiKind, Wait,
};
use crate::diagnostic::{Diagnostic, FieldPath, JsonLocator, Position};
use crate::jexl::Expression;
use crate::model::{Parsed, RejectedItem};

/// Largest index accepted, in bytes.
pub(crate) const MAX_INDEX_BYTES: usize = 16 * 1024 * 1024;

const FLIGHT_KEYS: &[&str] = &[
    "studyname",
    "name",
    "author",
    "description",
    "flightplan",
    "endBy",
    "end",
    "kill",
    "stopflight",
    "infourl",
    "version",
    "specversion",
    "filter",
    "randomDeploy",
    "randomsubset",
];

pub(super) fn parse_index(file: &str, text: &str) -> Parsed<FlightsIndex> {
    let mut reader = Reader {
        file,
        text,
        locator: JsonLocator::new(text),
        diagnostics: Vec::new(),
    };
    let index = reader.index();
    Parsed {
        value: index,
        diagnostics: reader.diagnostics,
    }
}

struct Reader<'a> {
    file: &'a str,
    text: &'a str,
    /// Positions every diagnostic in about one pass over the text, however many there are.
    locator: JsonLocator<'a>,
    diagnostics: Vec<Diagnostic>,
}

/// A key given in one of two spellings.
enum Aliased<'v> {
    Absent,
    Present(&'v Value, KeyStyle, FieldPath),
    Both,
}

impl<'a> Reader<'a> {
    fn error(&mut self, path: &FieldPath, message: String) {
        let position = self.locator.locate(path);
        self.diagnostics.push(Diagnostic::error(
            self.file,
            position,
            path.clone(),
            message,
        ));
    }

    fn warning(&mut self, path: &FieldPath, message: String) {
        let position = self.locator.locate(path);
        self.diagnostics.push(Diagnostic::warning(
            self.file,
            position,
            path.clone(),
            message,
        ));
    }

    fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    fn index(&mut self) -> Option<FlightsIndex> {
        if self.text.len() > MAX_INDEX_BYTES {
            self.diagnostics.push(Diagnostic::error(
                self.file,
                Position::START,
                FieldPath::root(),
                format!(
                    "index is {} bytes, more than the limit of {MAX_INDEX_BYTES} bytes",
                    self.text.len()
                ),
            ));
            return None;
        }
        let root: Value = match serde_json::from_str(self.text) {
            Ok(root) => root,
            Err(err) => {
                let message = err.to_string();
                let message = message
                    .rsplit_once(" at line ")
                    .map_or(message.as_str(), |(m, _)| m);
                self.diagnostics.push(Diagnostic::error(
                    self.file,
                    Position {
                        line: err.line().max(1),
                        column: err.column().max(1),
                    },
                    FieldPath::root(),
                    format!("invalid JSON: {message}"),
                ));
                return None;
            }
        };
        let root_path = FieldPath::root();
        let (shape, flights, flights_path) = match &root {
            Value::Array(items) => (IndexShape::Array, items, root_path),
            Value::Object(map) => {
                for key in map.keys().filter(|k| *k != "flights") {
                    self.warning(
                        &root_path.key(key),
                        format!("unknown key `{key}` is ignored"),
                    );
                }
                match map.get("flights") {
                    Some(Value::Array(items)) => {
                        (IndexShape::Object, items, root_path.key("flights"))
                    }
                    Some(other) => {
                        self.error(
                            &root_path.key("flights"),
                            format!("expected a list of flights, found {}", type_name(other)),
                        );
                        return None;
                    }
                    None => {
                        self.error(
                            &root_path,
                            "missing `flights`: the index is a list of flights or \
                             {\"flights\": [...]}"
                                .to_owned(),
                        );
                        return None;
                    }
                }
            }
            other => {
                self.error(
                    &root_path,
                    format!(
                        "expected a list of flights or {{\"flights\": [...]}}, found {}",
                        type_name(other)
                    ),
                );
                return None;
            }
        };
        let mut out: Vec<Flight> = Vec::new();
        let mut rejected: Vec<RejectedItem> = Vec::new();
        let mut names = HashSet::new();
        for (idx, item) in flights.iter().enumerate() {
            let path = flights_path.index(idx);
            let first_diagnostic = self.diagnostics.len();
            let before = self.error_count();
            let flight = self.flight(item, &path);
            let flight = match flight {
                Some(flight) if self.error_count() == before => flight,
                _ => {
                    rejected.push(self.rejected(item, idx, &path, first_diagnostic));
                    continue;
                }
            };
            if !names.insert(flight.studyname.clone()) {
                let key = match flight.spelling.studyname {
                    KeyStyle::Document => "studyname",
                    KeyStyle::Reference => "name",
                };
                self.error(
                    &path.key(key),
                    format!(
                        "flight `{}` is defined twice; this one is ignored",
                        flight.studyname
                    ),
                );
                rejected.push(self.rejected(item, idx, &path, first_diagnostic));
                continue;
            }
            out.push(flight);
        }
        Some(FlightsIndex {
            shape,
            flights: out,
            rejected,
        })
    }

    /// The record of a flight left out of the index, from the diagnostics found since
    /// `first_diagnostic`. Its id is its studyname (either spelling) when that is a
    /// non-empty string.
    fn rejected(
        &mut self,
        item: &Value,
        index: usize,
        path: &FieldPath,
        first_diagnostic: usize,
    ) -> RejectedItem {
        let id = ["studyname", "name"]
            .iter()
            .find_map(|key| match item.get(key) {
                Some(Value::String(name)) if !name.is_empty() => Some(name.clone()),
                _ => None,
            });
        let position = self.locator.locate(path);
        RejectedItem::from_diagnostics(
            id,
            self.file,
            index,
            position,
            path,
            self.diagnostics.get(first_diagnostic..).unwrap_or_default(),
        )
    }

    fn object<'v>(
        &mut self,
        value: &'v Value,
        path: &FieldPath,
        what: &str,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(map) = value else {
            self.error(
                path,
                format!("expected {what} (an object), found {}", type_name(value)),
            );
            return None;
        };
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                self.warning(&path.key(key), format!("unknown key `{key}` is ignored"));
            }
        }
        Some(map)
    }

    fn aliased<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        path: &FieldPath,
        document: &str,
        reference: &str,
    ) -> Aliased<'v> {
        match (map.get(document), map.get(reference)) {
            (Some(_), Some(_)) => {
                self.error(
                    &path.key(reference),
                    format!("give either `{document}` or `{reference}`, not both"),
                );
                Aliased::Both
            }
            (Some(v), None) => Aliased::Present(v, KeyStyle::Document, path.key(document)),
            (None, Some(v)) => Aliased::Present(v, KeyStyle::Reference, path.key(reference)),
            (None, None) => Aliased::Absent,
        }
    }

    fn string(&mut self, value: &Value, path: &FieldPath) -> Option<String> {
        match value {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::String(_) => {
                self.error(path, "must not be empty".to_owned());
                None
            }
            other => {
                self.error(
                    path,
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn optional_string(
        &mut self,
        map: &Map<String, Value>,
        path: &FieldPath,
        key: &str,
    ) -> Option<String> {
        let value = map.get(key)?;
        self.string(value, &path.key(key))
    }

    fn bool(&mut self, value: &Value, path: &FieldPath) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(*b),
            other => {
                self.error(
                    path,
                    format!("expected true or false, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn flight(&mut self, value: &Value, path: &FieldPath) -> Option<Flight> {
        let map = self.object(value, path, "a flight", FLIGHT_KEYS)?;
        let mut spelling = Spelling::default();

        let studyname = match self.aliased(map, path, "studyname", "name") {
            Aliased::Present(v, style, p) => {
                spelling.studyname = style;
                self.string(v, &p)
            }
            Aliased::Absent => {
                self.error(
                    path,
                    "missing required field `studyname` (or `name`)".to_owned(),
                );
                None
            }
            Aliased::Both => None,
        };
        let end_by = match self.aliased(map, path, "endBy", "end") {
            Aliased::Present(v, style, p) => {
                spelling.end_by = style;
                match deadline(v) {
                    Ok(deadline) => Some(EndBy {
                        deadline,
                        written: v.clone(),
                    }),
                    Err(message) => {
                        self.error(&p, message);
                        None
                    }
                }
            }
            Aliased::Absent => {
                self.error(
                    path,
                    "missing required field `endBy` (or `end`): every flight must say when it \
                     ends"
                        .to_owned(),
                );
                None
            }
            Aliased::Both => None,
        };
        let kill = match self.aliased(map, path, "kill", "stopflight") {
            Aliased::Present(v, style, p) => {
                spelling.kill = style;
                self.bool(v, &p)
            }
            _ => None,
        };
        let version = match self.aliased(map, path, "version", "specversion") {
            Aliased::Present(v, style, p) => {
                spelling.version = style;
                match v {
                    Value::Number(n) if n.as_f64().is_some_and(|n| n > 0.0) => {
                        n.as_f64().map(SpecVersion::Number)
                    }
                    Value::String(s) if style == KeyStyle::Document && !s.trim().is_empty() => {
                        Some(SpecVersion::Text(s.clone()))
                    }
                    _ => {
                        let what = if style == KeyStyle::Document {
                            "a number > 0 or a version string"
                        } else {
                            "a number > 0"
                        };
                        self.error(&p, format!("expected {what}, found {}", type_name(v)));
                        None
                    }
                }
            }
            _ => None,
        };
        let author = self.optional_string(map, path, "author");
        let description = self.optional_string(map, path, "description");
        let infourl = self.optional_string(map, path, "infourl");
        let filter = map
            .get("filter")
            .and_then(|v| self.filter(v, &path.key("filter")));
        let random_deploy = match self.aliased(map, path, "randomDeploy", "randomsubset") {
            Aliased::Present(v, style, p) => {
                spelling.random_deploy = style;
                self.random_deploy(v, &p)
            }
            _ => None,
        };
        let flightplan = map
            .get("flightplan")
            .and_then(|v| self.flightplan(v, &path.key("flightplan")));
        Some(Flight {
            studyname: studyname?,
            author,
            description,
            infourl,
            version,
            end_by: end_by?,
            kill,
            filter,
            random_deploy,
            flightplan,
            spelling,
        })
    }

    fn filter(&mut self, value: &Value, path: &FieldPath) -> Option<FlightFilter> {
        let known = [
            "channels",
            "channel",
            "oses",
            "os",
            "locales",
            "locale",
            "versions",
            "version",
            "expression",
        ];
        let map = self.object(value, path, "a filter", &known)?;
        let mut filter = FlightFilter::default();
        for (plural, singular) in [
            ("channels", "channel"),
            ("oses", "os"),
            ("locales", "locale"),
            ("versions", "version"),
        ] {
            let list = match self.aliased(map, path, plural, singular) {
                Aliased::Present(v, style, p) => self.filter_list(v, &p, style),
                _ => None,
            };
            match plural {
                "channels" => filter.channels = list,
                "oses" => filter.oses = list,
                "locales" => filter.locales = list,
                _ => filter.versions = list,
            }
        }
        if let Some(v) = map.get("expression") {
            let p = path.key("expression");
            if let Some(source) = self.string(v, &p) {
                match Expression::parse(&source) {
                    Ok(compiled) => {
                        filter.expression = Some(FilterExpression { source, compiled });
                    }
                    Err(err) => self.error(
                        &p,
                        format!(
                            "invalid filter expression at offset {}: {}",
                            err.offset, err.message
                        ),
                    ),
                }
            }
        }
        Some(filter)
    }

    fn filter_list(
        &mut self,
        value: &Value,
        path: &FieldPath,
        style: KeyStyle,
    ) -> Option<FilterList> {
        let Value::Array(items) = value else {
            self.error(
                path,
                format!("expected a list of strings, found {}", type_name(value)),
            );
            return None;
        };
        if items.is_empty() {
            self.warning(path, "an empty list matches no client".to_owned());
        }
        let mut values = Vec::new();
        for (idx, item) in items.iter().enumerate() {
            values.push(self.string(item, &path.index(idx))?);
        }
        Some(FilterList { values, style })
    }

    fn random_deploy(&mut self, value: &Value, path: &FieldPath) -> Option<RandomDeploy> {
        let map = self.object(
            value,
            path,
            "a random deploy",
            &["keyname", "ge", "lt", "key", "range"],
        )?;
        let document = ["keyname", "ge", "lt"].iter().any(|k| map.contains_key(*k));
        let reference = ["key", "range"].iter().any(|k| map.contains_key(*k));
        if document && reference {
            self.error(
                path,
                "use either {keyname, ge, lt} or {key, range: [lo, hi]}, not a mix".to_owned(),
            );
            return None;
        }
        let unit = |n: Option<f64>| n.filter(|n| (0.0..=1.0).contains(n));
        if reference {
            let keyname = match map.get("key") {
                Some(v) => self.string(v, &path.key("key")),
                None => {
                    self.error(path, "missing required field `key`".to_owned());
                    None
                }
            };
            let range_path = path.key("range");
            let range = match map.get("range") {
                Some(Value::Array(items)) if items.len() == 2 => {
                    let lo = unit(items.first().and_then(Value::as_f64));
                    let hi = unit(items.get(1).and_then(Value::as_f64));
                    match (lo, hi) {
                        (Some(lo), Some(hi)) if lo < hi => Some((lo, hi)),
                        _ => {
                            self.error(
                                &range_path,
                                "range must be two numbers with 0 ≤ lo < hi ≤ 1".to_owned(),
                            );
                            None
                        }
                    }
                }
                Some(_) => {
                    self.error(
                        &range_path,
                        "range must be a list of two numbers [lo, hi]".to_owned(),
                    );
                    None
                }
                None => {
                    self.error(path, "missing required field `range`".to_owned());
                    None
                }
            };
            let (ge, lt) = range?;
            return Some(RandomDeploy {
                keyname: keyname?,
                ge,
                lt,
                form: KeyStyle::Reference,
            });
        }
        let keyname = match map.get("keyname") {
            Some(v) => self.string(v, &path.key("keyname")),
            None => {
                self.error(path, "missing required field `keyname`".to_owned());
                None
            }
        };
        let mut bound = |key: &str, ok: fn(f64) -> bool, rule: &str| match map.get(key) {
            Some(v) => match v.as_f64().filter(|n| ok(*n)) {
                Some(n) => Some(n),
                None => {
                    self.error(
                        &path.key(key),
                        format!("`{key}` must be a number in {rule}"),
                    );
                    None
                }
            },
            None => {
                self.error(path, format!("missing required field `{key}`"));
                None
            }
        };
        let ge = bound("ge", |n| (0.0..1.0).contains(&n), "[0, 1)");
        let lt = bound("lt", |n| n > 0.0 && n <= 1.0, "(0, 1]");
        let (ge, lt) = (ge?, lt?);
        if ge >= lt {
            self.error(path, "`ge` must be less than `lt`".to_owned());
            return None;
        }
        Some(RandomDeploy {
            keyname: keyname?,
            ge,
            lt,
            form: KeyStyle::Document,
        })
    }

    fn flightplan(&mut self, value: &Value, path: &FieldPath) -> Option<FlightPlan> {
        let Value::Array(items) = value else {
            self.error(
                path,
                format!("expected a list of steps, found {}", type_name(value)),
            );
            return None;
        };
        let mut steps = Vec::new();
        for (idx, item) in items.iter().enumerate() {
            let step_path = path.index(idx);
            match item {
                Value::Array(parallel) => {
                    if parallel.is_empty() {
                        self.warning(&step_path, "an empty parallel step does nothing".to_owned());
                    }
                    let mut directives = Vec::new();
                    for (j, d) in parallel.iter().enumerate() {
                        let d_path = step_path.index(j);
                        if matches!(d, Value::Array(_)) {
                            self.error(
                                &d_path,
                                "parallel steps cannot be nested; a parallel step is a list \
                                 of directive objects"
                                    .to_owned(),
                            );
                            continue;
                        }
                        directives.extend(self.directive(d, &d_path));
                    }
                    steps.push(PlanStep::Parallel(directives));
                }
                other => {
                    if let Some(d) = self.directive(other, &step_path) {
                        steps.push(PlanStep::Single(d));
                    }
                }
            }
        }
        Some(FlightPlan { steps })
    }

    fn template(&mut self, value: &Value, path: &FieldPath) -> Option<Template> {
        let Value::String(s) = value else {
            self.error(
                path,
                format!("expected a string, found {}", type_name(value)),
            );
            return None;
        };
        self.check_template(s, path)?;
        Some(Template(s.clone()))
    }

    /// Checks placeholders: malformed is an error, unknown names are warnings.
    fn check_template(&mut self, s: &str, path: &FieldPath) -> Option<()> {
        match template_parts(s) {
            Ok(parts) => {
                for part in parts {
                    if let TemplatePart::Variable(name) = part
                        && !TEMPLATE_VARIABLES.contains(&name)
                    {
                        self.warning(
                            path,
                            format!(
                                "unknown template variable `{{{{{name}}}}}` (known: {})",
                                TEMPLATE_VARIABLES.join(", ")
                            ),
                        );
                    }
                }
                Some(())
            }
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }

    fn optional_template(
        &mut self,
        map: &Map<String, Value>,
        path: &FieldPath,
        key: &str,
    ) -> Result<Option<Template>, ()> {
        match map.get(key) {
            Some(v) => self.template(v, &path.key(key)).map(Some).ok_or(()),
            None => Ok(None),
        }
    }

    /// String data is a template too; other JSON is passed through.
    fn data(&mut self, map: &Map<String, Value>, path: &FieldPath) -> Result<Option<Value>, ()> {
        match map.get("data") {
            Some(Value::String(s)) => {
                self.check_template(s, &path.key("data")).ok_or(())?;
                Ok(Some(Value::String(s.clone())))
            }
            Some(other) => Ok(Some(other.clone())),
            None => Ok(None),
        }
    }

    fn directive(&mut self, value: &Value, path: &FieldPath) -> Option<Directive> {
        let Value::Object(map) = value else {
            self.error(
                path,
                format!(
                    "expected a directive object or a list of them, found {}",
                    type_name(value)
                ),
            );
            return None;
        };
        let action = match map.get("action") {
            Some(Value::String(a)) => a.as_str(),
            Some(other) => {
                self.error(
                    &path.key("action"),
                    format!("expected an action name, found {}", type_name(other)),
                );
                return None;
            }
            None => {
                self.error(path, "missing required field `action`".to_owned());
                return None;
            }
        };
        let known: &[&str] = match action {
            "wait" => &["until", "for", "time"],
            "ping" => &["url", "method", "data"],
            "external" | "ui" | "ask" => &["url", "type", "title", "text", "waitFor"],
            "addon" => &["do", "id", "url", "path", "permission", "msg"],
            "observe" => &["topic", "subject"],
            "notify" | "emitevent" => &["topic", "subject", "data"],
            "log" | "status" | "message" => &["msg"],
            "copilot" | "micropilot" | "instrument" => {
                // Rebuilt rather than `remove`d so that member order is kept.
                let options: Map<String, Value> = map
                    .iter()
                    .filter(|(k, _)| *k != "action")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let action = match action {
                    "copilot" => InstrumentAction::Copilot,
                    "micropilot" => InstrumentAction::Micropilot,
                    _ => InstrumentAction::Instrument,
                };
                return Some(Directive::Instrument { action, options });
            }
            other => {
                self.error(
                    &path.key("action"),
                    format!(
                        "unknown action `{other}` (expected wait, ping, external, ui, ask, addon, \
                         observe, notify, emitevent, log, status, message, copilot, micropilot \
                         or instrument)"
                    ),
                );
                return None;
            }
        };
        for key in map.keys() {
            if key != "action" && !known.contains(&key.as_str()) {
                self.warning(
                    &path.key(key),
                    format!("unknown key `{key}` for action `{action}` is ignored"),
                );
            }
        }
        match action {
            "wait" => self.wait(map, path).map(Directive::Wait),
            "ping" => {
                let url = match map.get("url") {
                    Some(v) => self.template(v, &path.key("url")),
                    None => {
                        self.error(path, "missing required field `url`".to_owned());
                        None
                    }
                };
                let method = match map.get("method") {
                    Some(Value::String(m)) if m == "GET" => Some(HttpMethod::Get),
                    Some(Value::String(m)) if m == "POST" => Some(HttpMethod::Post),
                    Some(Value::String(m)) if m == "PUT" => Some(HttpMethod::Put),
                    Some(_) => {
                        self.error(
                            &path.key("method"),
                            "method must be GET, POST or PUT".to_owned(),
                        );
                        return None;
                    }
                    None => None,
                };
                let data = self.data(map, path).ok()?;
                Some(Directive::Ping(Ping {
                    url: url?,
                    method,
                    data,
                }))
            }
            "external" | "ui" | "ask" => {
                let kind = match map.get("type") {
                    Some(Value::String(t)) if t == "survey" => Some(UiKind::Survey),
                    Some(Value::String(t)) if t == "message" => Some(UiKind::Message),
                    Some(Value::String(t)) if t == "warn" => Some(UiKind::Warn),
                    Some(_) => {
                        self.error(
                            &path.key("type"),
                            "type must be survey, message or warn".to_owned(),
                        );
                        return None;
                    }
                    None => None,
                };
                let url = self.optional_template(map, path, "url");
                let title = self.optional_template(map, path, "title");
                let text = self.optional_template(map, path, "text");
                let wait_for = match map.get("waitFor") {
                    Some(v) => Some(self.string(v, &path.key("waitFor"))?),
                    None => None,
                };
                let action = match action {
                    "external" => UiAction::External,
                    "ui" => UiAction::Ui,
                    _ => UiAction::Ask,
                };
                Some(Directive::Ui {
                    action,
                    spec: UiDirective {
                        url: url.ok()?,
                        kind,
                        title: title.ok()?,
                        text: text.ok()?,
                        wait_for,
                    },
                })
            }
            "addon" => self.addon(map, path).map(Directive::Addon),
            "observe" => {
                let topic = self.optional_template(map, path, "topic").ok()?;
                let subject = self.optional_template(map, path, "subject").ok()?;
                if topic.is_none() && subject.is_none() {
                    self.error(
                        path,
                        "observe needs a `topic`, a `subject` or both".to_owned(),
                    );
                    return None;
                }
                Some(Directive::Observe(Observe { topic, subject }))
            }
            "notify" | "emitevent" => {
                let topic = match map.get("topic") {
                    Some(v) => self.template(v, &path.key("topic")),
                    None => {
                        self.error(path, "missing required field `topic`".to_owned());
                        None
                    }
                };
                let subject = self.optional_template(map, path, "subject");
                let data = self.data(map, path);
                let action = if action == "notify" {
                    NotifyAction::Notify
                } else {
                    NotifyAction::EmitEvent
                };
                Some(Directive::Notify {
                    action,
                    spec: NotifyDirective {
                        topic: topic?,
                        subject: subject.ok()?,
                        data: data.ok()?,
                    },
                })
            }
            _ => {
                let msg = match map.get("msg") {
                    Some(v) => self.template(v, &path.key("msg"))?,
                    None => {
                        self.error(path, "missing required field `msg`".to_owned());
                        return None;
                    }
                };
                let action = match action {
                    "log" => MessageAction::Log,
                    "status" => MessageAction::Status,
                    _ => MessageAction::Message,
                };
                Some(Directive::Message { action, msg })
            }
        }
    }

    fn wait(&mut self, map: &Map<String, Value>, path: &FieldPath) -> Option<Wait> {
        let given: Vec<&str> = ["until", "for", "time"]
            .into_iter()
            .filter(|k| map.contains_key(*k))
            .collect();
        let [key] = given.as_slice() else {
            self.error(
                path,
                "wait needs exactly one of `until` (a time) and `for` (milliseconds)".to_owned(),
            );
            return None;
        };
        let value = map.get(*key)?;
        let p = path.key(key);
        if *key == "until" {
            let at = match value {
                Value::Number(n) => n.as_f64().filter(|n| *n >= 0.0).and_then(timestamp_from_ms),
                Value::String(s) => date_string(s),
                _ => None,
            };
            return match at {
                Some(at) => Some(Wait::Until {
                    at,
                    written: value.clone(),
                }),
                None => {
                    self.error(
                        &p,
                        "`until` must be a time: epoch milliseconds or a date string".to_owned(),
                    );
                    None
                }
            };
        }
        match value.as_f64().filter(|n| n.is_finite() && *n >= 0.0) {
            Some(ms) => Some(Wait::For {
                ms,
                reference_key: *key == "time",
            }),
            None => {
                self.error(&p, format!("`{key}` must be a number of milliseconds ≥ 0"));
                None
            }
        }
    }

    fn addon(&mut self, map: &Map<String, Value>, path: &FieldPath) -> Option<AddonDirective> {
        let operation = match map.get("do") {
            Some(Value::String(d)) if d == "install" => Some(AddonOperation::Install),
            Some(Value::String(d)) if d == "uninstall" => Some(AddonOperation::Uninstall),
            Some(Value::String(d)) if d == "ensure" => Some(AddonOperation::Ensure),
            Some(_) => {
                self.error(
                    &path.key("do"),
                    "`do` must be install, uninstall or ensure".to_owned(),
                );
                return None;
            }
            None => None,
        };
        let permission = match map.get("permission") {
            Some(Value::String(p)) if p == "warn" => Some(AddonPermission::Warn),
            Some(Value::String(p)) if p == "notify" => Some(AddonPermission::Notify),
            Some(_) => {
                self.error(
                    &path.key("permission"),
                    "`permission` must be warn or notify".to_owned(),
                );
                return None;
            }
            None => None,
        };
        let id = match map.get("id") {
            Some(v) => Some(self.string(v, &path.key("id"))?),
            None => None,
        };
        let url = self.optional_template(map, path, "url").ok()?;
        let path_value = match map.get("path") {
            Some(v) => Some(self.string(v, &path.key("path"))?),
            None => None,
        };
        let msg = self.optional_template(map, path, "msg").ok()?;
        let op = operation.unwrap_or(AddonOperation::Install);
        if (op == AddonOperation::Uninstall || op == AddonOperation::Ensure) && id.is_none() {
            let what = if op == AddonOperation::Ensure {
                "ensure"
            } else {
                "uninstall"
            };
            self.error(path, format!("`do: {what}` needs the add-on `id`"));
            return None;
        }
        if op != AddonOperation::Uninstall {
            match (&url, &path_value) {
                (None, None) => {
                    self.error(
                        path,
                        "installing an add-on needs a `url` or a `path`".to_owned(),
                    );
                    return None;
                }
                (Some(_), Some(_)) => {
                    self.error(path, "give either `url` or `path`, not both".to_owned());
                    return None;
                }
                _ => {}
            }
        }
        Some(AddonDirective {
            operation,
            id,
            url,
            path: path_value,
            permission,
            msg,
        })
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn timestamp_from_ms(ms: f64) -> Option<jiff::Timestamp> {
    if !ms.is_finite() {
        return None;
    }
    let whole = ms.floor();
    // Guard the cast: jiff's range is far inside i64 milliseconds.
    if whole.abs() > 1e16 {
        return None;
    }
    jiff::Timestamp::from_millisecond(whole as i64).ok()
}

/// Reads `endBy` (see [`Deadline`]).
pub(super) fn deadline(value: &Value) -> Result<Deadline, String> {
    let number = |n: Option<f64>| match n {
        Some(n) if n.is_finite() && n > 0.0 => {
            if n >= ABSOLUTE_TIME_THRESHOLD_MS {
                timestamp_from_ms(n)
                    .map(Deadline::At)
                    .ok_or_else(|| format!("{n} ms since 1970 is out of the supported range"))
            } else {
                Ok(Deadline::AfterFirstSeen(n))
            }
        }
        _ => Err("must be a positive number of milliseconds".to_owned()),
    };
    match value {
        Value::Number(n) => number(n.as_f64()),
        Value::String(s) => date_string(s).map(Deadline::At).ok_or_else(|| {
            format!(
                "`{s}` is not a date (use ISO-8601 such as 2012-04-23T18:25:43.511Z, or a form \
                 like 11 March 2020)"
            )
        }),
        Value::Object(map) if map.len() == 1 && map.contains_key("value") => {
            number(map.get("value").and_then(Value::as_f64))
        }
        other => Err(format!(
            "expected a time (epoch milliseconds or a date string) or a duration in \
             milliseconds, found {}",
            type_name(other)
        )),
    }
}

/// Reads a date string (see [`Deadline`] for the accepted forms).
pub(super) fn date_string(text: &str) -> Option<jiff::Timestamp> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Some(ts);
    }
    let utc = |dt: jiff::civil::DateTime| {
        dt.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    };
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return utc(dt);
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return utc(date.to_datetime(jiff::civil::Time::midnight()));
    }
    if let Ok(zoned) = jiff::fmt::rfc2822::parse(text) {
        return Some(zoned.timestamp());
    }
    js_date_string(text).and_then(utc)
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A name matches when it is at least three letters long and a prefix of the full name
/// (`Mar`, `March`, `Sept`).
fn name_index(token: &str, names: &[&str]) -> Option<usize> {
    let lower = token.to_ascii_lowercase();
    if lower.len() < 3 {
        return None;
    }
    names.iter().position(|name| name.starts_with(&lower))
}

/// The day-month-year forms JavaScript's `Date` parser accepts: `11 March 2020`,
/// `March 11, 2020`, `Mar 11 2020`, with an optional leading weekday and an optional time
/// `HH:MM[:SS]` followed by an optional `GMT`/`UTC`/`Z`.
fn js_date_string(text: &str) -> Option<jiff::civil::DateTime> {
    let cleaned = text.replace(',', " ");
    let mut tokens: Vec<&str> = cleaned.split_whitespace().collect();
    if tokens.first().is_some_and(|t| {
        t.chars().all(|c| c.is_ascii_alphabetic()) && name_index(t, &WEEKDAYS).is_some()
    }) {
        tokens.remove(0);
    }
    if tokens
        .last()
        .is_some_and(|t| matches!(t.to_ascii_uppercase().as_str(), "GMT" | "UTC" | "Z"))
    {
        tokens.pop();
    }
    let (date_tokens, time) = match tokens.as_slice() {
        [a, b, c] => ([*a, *b, *c], None),
        [a, b, c, t] => ([*a, *b, *c], Some(*t)),
        _ => return None,
    };
    let [a, b, c] = date_tokens;
    let (month, day) = if let Some(m) = name_index(a, &MONTHS) {
        (m, b)
    } else {
        (name_index(b, &MONTHS)?, a)
    };
    if !a.chars().all(|ch| ch.is_ascii_alphanumeric())
        || !b.chars().all(|ch| ch.is_ascii_alphanumeric())
    {
        return None;
    }
    let day: i8 = day.parse().ok()?;
    if c.len() != 4 {
        return None;
    }
    let year: i16 = c.parse().ok()?;
    let month = i8::try_from(month + 1).ok()?;
    let date = jiff::civil::Date::new(year, month, day).ok()?;
    let time = match time {
        None => jiff::civil::Time::midnight(),
        Some(t) => {
            let parts: Vec<&str> = t.split(':').collect();
            let num = |s: Option<&&str>| -> Option<i8> {
                let s = s?;
                if s.is_empty() || s.len() > 2 {
                    return None;
                }
                s.parse().ok()
            };
            match parts.len() {
                2 | 3 => jiff::civil::Time::new(
                    num(parts.first())?,
                    num(parts.get(1))?,
                    if parts.len() == 3 {
                        num(parts.get(2))?
                    } else {
                        0
                    },
                    0,
                )
                .ok()?,
                _ => return None,
            }
        }
    };
    Some(date.to_datetime(time))
}

/// A piece of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TemplatePart<'a> {
    /// Literal text.
    Text(&'a str),
    /// A placeholder name.
    Variable(&'a str),
}

/// Splits a template into text and placeholders; `Err` for an unclosed or malformed one.
pub(crate) fn template_parts(template: &str) -> Result<Vec<TemplatePart<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let (text, after) = rest.split_at(start);
        if !text.is_empty() {
            parts.push(TemplatePart::Text(text));
        }
        let triple = after.starts_with("{{{");
        let (open, close) = if triple { (3, "}}}") } else { (2, "}}") };
        let inner_start = after.get(open..).unwrap_or_default();
        let Some(end) = inner_start.find(close) else {
            return Err(format!(
                "unclosed template placeholder `{}`",
                after.chars().take(20).collect::<String>()
            ));
        };
        let name = inner_start.get(..end).unwrap_or_default().trim();
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(format!(
                "malformed template placeholder `{}{}{close}`",
                &after.get(..open).unwrap_or_default(),
                inner_start.get(..end).unwrap_or_default()
            ));
        }
        parts.push(TemplatePart::Variable(name));
        rest = inner_start.get(end + close.len()..).unwrap_or_default();
    }
    if !rest.is_empty() {
        parts.push(TemplatePart::Text(rest));
    }
    Ok(parts)
}
