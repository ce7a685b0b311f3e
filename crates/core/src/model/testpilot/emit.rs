//! Writing a flights index back to JSON, with the spellings and shapes that were read.

use serde_json::{Map, Value};

use super::{
    AddonOperation, AddonPermission, Directive, FilterList, Flight, FlightsIndex, HttpMethod,
    IndexShape, InstrumentAction, KeyStyle, MessageAction, NotifyAction, PlanStep, SpecVersion,
    Template, UiAction, UiKind, Wait,
};

/// Writes the index as pretty-printed JSON (two-space indent).
pub fn to_json(index: &FlightsIndex) -> String {
    let flights = Value::Array(index.flights.iter().map(flight).collect());
    let root = match index.shape {
        IndexShape::Array => flights,
        IndexShape::Object => {
            let mut map = Map::new();
            map.insert("flights".into(), flights);
            Value::Object(map)
        }
    };
    // A tree of plain JSON values always serialises.
    serde_json::to_string_pretty(&root).unwrap_or_default()
}

fn number(n: f64) -> Value {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if n.fract() == 0.0 && n.abs() <= MAX_SAFE {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn pick(style: KeyStyle, document: &'static str, reference: &'static str) -> String {
    match style {
        KeyStyle::Document => document.to_owned(),
        KeyStyle::Reference => reference.to_owned(),
    }
}

fn flight(flight: &Flight) -> Value {
    let s = flight.spelling;
    let mut map = Map::new();
    map.insert(
        pick(s.studyname, "studyname", "name"),
        Value::String(flight.studyname.clone()),
    );
    for (key, value) in [
        ("author", &flight.author),
        ("description", &flight.description),
        ("infourl", &flight.infourl),
    ] {
        if let Some(value) = value {
            map.insert(key.into(), Value::String(value.clone()));
        }
    }
    if let Some(version) = &flight.version {
        let value = match version {
            SpecVersion::Number(n) => number(*n),
            SpecVersion::Text(t) => Value::String(t.clone()),
        };
        map.insert(pick(s.version, "version", "specversion"), value);
    }
    map.insert(
        pick(s.end_by, "endBy", "end"),
        flight.end_by.written.clone(),
    );
    if let Some(kill) = flight.kill {
        map.insert(pick(s.kill, "kill", "stopflight"), Value::Bool(kill));
    }
    if let Some(filter) = &flight.filter {
        let mut f = Map::new();
        let lists: [(&Option<FilterList>, &str, &str); 4] = [
            (&filter.channels, "channels", "channel"),
            (&filter.oses, "oses", "os"),
            (&filter.locales, "locales", "locale"),
            (&filter.versions, "versions", "version"),
        ];
        for (list, plural, singular) in lists {
            if let Some(list) = list {
                f.insert(
                    pick(list.style, plural, singular),
                    Value::Array(list.values.iter().cloned().map(Value::String).collect()),
                );
            }
        }
        if let Some(expression) = &filter.expression {
            f.insert(
                "expression".into(),
                Value::String(expression.source.clone()),
            );
        }
        map.insert("filter".into(), Value::Object(f));
    }
    if let Some(rd) = &flight.random_deploy {
        let mut r = Map::new();
        match rd.form {
            KeyStyle::Document => {
                r.insert("keyname".into(), Value::String(rd.keyname.clone()));
                r.insert("ge".into(), number(rd.ge));
                r.insert("lt".into(), number(rd.lt));
            }
            KeyStyle::Reference => {
                r.insert("key".into(), Value::String(rd.keyname.clone()));
                r.insert(
                    "range".into(),
                    Value::Array(vec![number(rd.ge), number(rd.lt)]),
                );
            }
        }
        map.insert(
            pick(s.random_deploy, "randomDeploy", "randomsubset"),
            Value::Object(r),
        );
    }
    if let Some(plan) = &flight.flightplan {
        let steps = plan
            .steps
            .iter()
            .map(|step| match step {
                PlanStep::Single(d) => directive(d),
                PlanStep::Parallel(ds) => Value::Array(ds.iter().map(directive).collect()),
            })
            .collect();
        map.insert("flightplan".into(), Value::Array(steps));
    }
    Value::Object(map)
}

fn put_template(map: &mut Map<String, Value>, key: &str, value: Option<&Template>) {
    if let Some(t) = value {
        map.insert(key.into(), Value::String(t.0.clone()));
    }
}

fn directive(directive: &Directive) -> Value {
    let mut map = Map::new();
    let action = |name: &str, map: &mut Map<String, Value>| {
        map.insert("action".into(), Value::String(name.into()));
    };
    match directive {
        Directive::Wait(wait) => {
            action("wait", &mut map);
            match wait {
                Wait::Until { written, .. } => {
                    map.insert("until".into(), written.clone());
                }
                Wait::For { ms, reference_key } => {
                    let key = if *reference_key { "time" } else { "for" };
                    map.insert(key.into(), number(*ms));
                }
            }
        }
        Directive::Ping(ping) => {
            action("ping", &mut map);
            put_template(&mut map, "url", Some(&ping.url));
            if let Some(method) = ping.method {
                let m = match method {
                    HttpMethod::Get => "GET",
                    HttpMethod::Post => "POST",
                    HttpMethod::Put => "PUT",
                };
                map.insert("method".into(), Value::String(m.into()));
            }
            if let Some(data) = &ping.data {
                map.insert("data".into(), data.clone());
            }
        }
        Directive::Ui { action: a, spec } => {
            let name = match a {
                UiAction::External => "external",
                UiAction::Ui => "ui",
                UiAction::Ask => "ask",
            };
            action(name, &mut map);
            if let Some(kind) = spec.kind {
                let k = match kind {
                    UiKind::Survey => "survey",
                    UiKind::Message => "message",
                    UiKind::Warn => "warn",
                };
                map.insert("type".into(), Value::String(k.into()));
            }
            put_template(&mut map, "url", spec.url.as_ref());
            put_template(&mut map, "title", spec.title.as_ref());
            put_template(&mut map, "text", spec.text.as_ref());
            if let Some(w) = &spec.wait_for {
                map.insert("waitFor".into(), Value::String(w.clone()));
            }
        }
        Directive::Addon(addon) => {
            action("addon", &mut map);
            if let Some(op) = addon.operation {
                let o = match op {
                    AddonOperation::Install => "install",
                    AddonOperation::Uninstall => "uninstall",
                    AddonOperation::Ensure => "ensure",
                };
                map.insert("do".into(), Value::String(o.into()));
            }
            if let Some(id) = &addon.id {
                map.insert("id".into(), Value::String(id.clone()));
            }
            put_template(&mut map, "url", addon.url.as_ref());
            if let Some(path) = &addon.path {
                map.insert("path".into(), Value::String(path.clone()));
            }
            if let Some(permission) = addon.permission {
                let p = match permission {
                    AddonPermission::Warn => "warn",
                    AddonPermission::Notify => "notify",
                };
                map.insert("permission".into(), Value::String(p.into()));
            }
            put_template(&mut map, "msg", addon.msg.as_ref());
        }
        Directive::Observe(observe) => {
            action("observe", &mut map);
            put_template(&mut map, "topic", observe.topic.as_ref());
            put_template(&mut map, "subject", observe.subject.as_ref());
        }
        Directive::Notify { action: a, spec } => {
            let name = match a {
                NotifyAction::Notify => "notify",
                NotifyAction::EmitEvent => "emitevent",
            };
            action(name, &mut map);
            put_template(&mut map, "topic", Some(&spec.topic));
            put_template(&mut map, "subject", spec.subject.as_ref());
            if let Some(data) = &spec.data {
                map.insert("data".into(), data.clone());
            }
        }
        Directive::Message { action: a, msg } => {
            let name = match a {
                MessageAction::Log => "log",
                MessageAction::Status => "status",
                MessageAction::Message => "message",
            };
            action(name, &mut map);
            put_template(&mut map, "msg", Some(msg));
        }
        Directive::Instrument { action: a, options } => {
            let name = match a {
                InstrumentAction::Copilot => "copilot",
                InstrumentAction::Micropilot => "micropilot",
                InstrumentAction::Instrument => "instrument",
            };
            action(name, &mut map);
            for (k, v) in options {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(map)
}
