//! Filter expressions: compiling v3 filter objects and locating syntax errors in the file.
//!
//! The Normandy server builds a revision's `filter_expression` from its parts, in this order:
//! `locales` → `normandy.locale in ['a', 'b']`, `countries` → `normandy.country in [...]`,
//! `channels` → `normandy.channel in [...]`, each `filter_object` entry's JEXL, then
//! `extra_filter_expression`; the parts are joined as `(a) && (b) && …`, without parentheses
//! when there is only one. Filter objects render as in Normandy's `filters.py`:
//!
//! | type | JEXL |
//! |---|---|
//! | `channel`, `locale`, `country` | `normandy.channel in ["release","beta"]` |
//! | `version` (majors) | per contiguous run N..M: `(env.version\|versionCompare("N.!")>=0)&&(env.version\|versionCompare("M.*")<0)`, runs joined with `\|\|` (each run parenthesised when there are several) |
//! | `versionRange` | `(env.version\|versionCompare("min")>=0)&&(env.version\|versionCompare("max")<0)` |
//! | `stableSample` | `[a,b]\|stableSample(rate)` (inputs are JEXL) |
//! | `bucketSample` | `[a,b]\|bucketSample(start,count,total)` |
//! | `namespaceSample` | `["ns",normandy.userId]\|bucketSample(start,count,10000)` |
//! | `jexl` | `(expression)` |
//! | `platform` | `normandy.os.isMac\|\|normandy.os.isWindows` |
//! | `preferenceValue` | `'pref'\|preferenceValue == value` (`contains`: `value in 'pref'\|preferenceValue`) |
//! | `preferenceExists`, `preferenceIsUserSet` | `'pref'\|preferenceExists` or `!('pref'\|preferenceExists)` |
//! | `dateRange` | `(normandy.request_time>="a"\|date)&&(normandy.request_time<"b"\|date)` |
//! | `profileCreationDate` | `(normandy.telemetry.main.environment.profile.creationDate<=days)`; `newerThan`: `(!normandy.telemetry.main)\|\|(…>days)` |
//! | `windowsBuildNumber` | `(normandy.os.isWindows && normandy.os.windowsBuildNumber >= n)` |
//! | `windowsVersion` | `(normandy.os.isWindows && normandy.os.windowsVersion in [6.1])` |
//! | `addonActive`, `addonInstalled` | `normandy.addons["id"].isActive` joined with `&&` (all) or `\|\|` (any) |
//! | `negate` | `!(inner)` |
//! | `and`, `or` | `(a&&b)`, `(a\|\|b)` |
//! | `preset` `pocket-1` | the fixed list of `preferenceIsUserSet` checks |
//! | `qaOnly` | `"<slug>" in 'app.normandy.testing-for-recipes'\|preferenceValue` |
//!
//! Numbers are written as the JSON gave them (`10`, `0.5`). The `version` filter follows the
//! reference notes (toolkit version comparison, correct from Firefox 100 on) rather than the
//! older string comparison some server versions emitted.

use std::collections::BTreeSet;

use crate::diagnostic::FieldPath;
use crate::jexl::{Expression, ParseError};

use super::FilterSource;
use super::json::{
    Cx, Json, JsonObj, Loc, as_whole_number, describe, map_string_offset, type_name,
};

/// A recipe's filter expression and its compiled form.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The expression text (compiled from the v3 parts when the recipe had them).
    pub expression: String,
    /// The compiled expression, or the syntax error that prevented compiling it.
    pub compiled: Result<Expression, ParseError>,
}

impl Filter {
    /// Compiles `expression` as the Firefox client does (tabs and newlines read as spaces).
    pub fn new(expression: &str) -> Filter {
        Filter {
            expression: expression.to_owned(),
            compiled: Expression::parse_normandy(expression),
        }
    }
}

impl PartialEq for Filter {
    fn eq(&self, other: &Filter) -> bool {
        self.expression == other.expression
            && self.compiled.as_ref().err() == other.compiled.as_ref().err()
    }
}

/// Where a stretch of the compiled expression came from, to position syntax errors.
#[derive(Debug, Clone)]
struct Segment {
    /// Byte range in the compiled expression.
    start: usize,
    len: usize,
    /// The JSON value the stretch came from.
    path: FieldPath,
    /// Whether the stretch is the decoded text of the JSON string at `path` (so positions
    /// can be mapped into it), rather than text generated from it.
    verbatim: bool,
}

/// A compiled expression with the provenance of its parts.
#[derive(Clone)]
struct Compiled {
    text: String,
    segments: Vec<Segment>,
}

impl Compiled {
    fn verbatim(text: &str, path: FieldPath) -> Compiled {
        Compiled {
            text: text.to_owned(),
            segments: vec![Segment {
                start: 0,
                len: text.len(),
                path,
                verbatim: true,
            }],
        }
    }

    fn generated(text: String, path: FieldPath) -> Compiled {
        let len = text.len();
        Compiled {
            text,
            segments: vec![Segment {
                start: 0,
                len,
                path,
                verbatim: false,
            }],
        }
    }

    /// Joins parts with `separator`, wrapping the result in `open`/`close`.
    fn join(parts: Vec<Compiled>, separator: &str, open: &str, close: &str) -> Compiled {
        let mut text = String::from(open);
        let mut segments = Vec::new();
        for (idx, part) in parts.into_iter().enumerate() {
            if idx > 0 {
                text.push_str(separator);
            }
            let shift = text.len();
            text.push_str(&part.text);
            segments.extend(part.segments.into_iter().map(|s| Segment {
                start: s.start + shift,
                ..s
            }));
        }
        text.push_str(close);
        Compiled { text, segments }
    }

    fn wrap(self, open: &str, close: &str) -> Compiled {
        Compiled::join(vec![self], "", open, close)
    }
}

/// The outcome of reading a recipe's filter fields.
pub(crate) struct FilterOutcome {
    /// The filter, when the recipe has one.
    pub filter: Option<Filter>,
    /// Capabilities required by the filter objects (for revisions that do not list theirs).
    pub capabilities: BTreeSet<String>,
}

/// Builds the filter of a recipe body at `path` from its `source` fields, reporting invalid
/// filter objects and syntax errors (positioned inside the file).
///
/// `slug` is the recipe's slug, needed by the `qaOnly` filter object.
pub(crate) fn build(
    cx: &mut Cx,
    source: &FilterSource,
    path: &Loc,
    slug: Option<&str>,
) -> FilterOutcome {
    let mut capabilities = BTreeSet::new();
    if !source.has_structured_parts() {
        // The usual case: the expression is the string as given, so no provenance is
        // recorded unless there is a syntax error to position.
        let filter = source.filter_expression.as_deref().map(|text| {
            let filter_path = path.key("filter_expression");
            finish(cx, text, path, || {
                Compiled::verbatim(text, filter_path.to_path())
            })
        });
        if filter.is_none() {
            cx.error(
                &path.key("filter_expression"),
                "missing filter: give filter_expression (or, in API v3, filter_object or \
                 extra_filter_expression)"
                    .to_owned(),
            );
        }
        return FilterOutcome {
            filter,
            capabilities,
        };
    }
    let compiled = compile_parts(cx, source, path, slug, &mut capabilities);
    if let (Some(compiled), Some(given)) = (&compiled, &source.filter_expression)
        && *given != compiled.text
    {
        cx.warning(
            &path.key("filter_expression"),
            format!(
                "filter_expression differs from the expression compiled from the filter \
                 parts ({}); the compiled one is used",
                serde_json::Value::from(compiled.text.as_str())
            ),
        );
    }
    FilterOutcome {
        filter: compiled.map(|compiled| finish(cx, &compiled.text, path, || compiled.clone())),
        capabilities,
    }
}

/// Compiles the final expression `text`, reporting an empty one and syntax errors (positioned
/// with the provenance `provenance` gives).
fn finish(cx: &mut Cx, text: &str, path: &Loc, provenance: impl FnOnce() -> Compiled) -> Filter {
    if text.trim().is_empty() {
        cx.warning(
            &path.key("filter_expression"),
            "the filter expression is empty, so the recipe matches no client".to_owned(),
        );
    }
    let filter = Filter::new(text);
    if let Err(error) = &filter.compiled {
        report_syntax_error(cx, &provenance(), error, path);
    }
    filter
}

/// Reports a JEXL syntax error at its position in the file.
fn report_syntax_error(cx: &mut Cx, compiled: &Compiled, error: &ParseError, path: &Loc) {
    let offset = error.offset;
    // The segment holding the offset; an error at the very end belongs to the last one.
    let segment = compiled
        .segments
        .iter()
        .find(|s| s.start <= offset && offset < s.start + s.len)
        .or_else(|| compiled.segments.iter().rfind(|s| s.start <= offset));
    let message = format!(
        "filter expression syntax error at offset {offset}: {}",
        error.message
    );
    let Some(segment) = segment else {
        cx.error(&path.key("filter_expression"), message);
        return;
    };
    let literal_start = cx.offset_of(&segment.path);
    let raw = if segment.verbatim {
        map_string_offset(cx.text, literal_start, offset - segment.start)
    } else {
        None
    };
    let position = cx.position_of_offset(raw.unwrap_or(literal_start));
    let segment_path = segment.path.clone();
    cx.error_at(position, &segment_path, message);
}

fn compile_parts(
    cx: &mut Cx,
    source: &FilterSource,
    path: &Loc,
    slug: Option<&str>,
    capabilities: &mut BTreeSet<String>,
) -> Option<Compiled> {
    let mut parts = Vec::new();
    let mut ok = true;
    for (key, field, list) in [
        ("locales", "normandy.locale", &source.locales),
        ("countries", "normandy.country", &source.countries),
        ("channels", "normandy.channel", &source.channels),
    ] {
        let Some(list) = list else { continue };
        let list = Json::from_value(list);
        let list = &list;
        let list_path = path.key(key);
        match string_list(cx, list, &list_path, false) {
            // An empty list adds nothing, as on the server.
            Some(items) if items.is_empty() => {}
            Some(items) => {
                let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
                parts.push(Compiled::generated(
                    format!("{field} in [{}]", quoted.join(", ")),
                    list_path.to_path(),
                ));
            }
            None => ok = false,
        }
    }
    if let Some(objects) = &source.filter_object {
        let objects = &Json::from_value(objects);
        let objects_path = path.key("filter_object");
        match cx.expect_array(objects, &objects_path) {
            Some(items) => {
                for (idx, item) in items.iter().enumerate() {
                    match filter_object(cx, item, &objects_path.index(idx), slug, 0) {
                        Some((part, caps)) => {
                            parts.push(part);
                            capabilities.extend(caps);
                        }
                        None => ok = false,
                    }
                }
            }
            None => ok = false,
        }
    }
    if let Some(extra) = &source.extra_filter_expression
        && !extra.is_empty()
    {
        parts.push(Compiled::verbatim(
            extra,
            path.key("extra_filter_expression").to_path(),
        ));
    }
    if !ok {
        return None;
    }
    if parts.is_empty() {
        cx.error(
            &path.key("filter_object"),
            "one of extra_filter_expression or filter_object is required".to_owned(),
        );
        return None;
    }
    Some(if parts.len() == 1 {
        Compiled::join(parts, "", "", "")
    } else {
        Compiled::join(parts, ") && (", "(", ")")
    })
}

/// Filter objects nest through `negate`, `and`, `or`; bound the depth.
const MAX_FILTER_DEPTH: usize = 32;

type Rendered = (Compiled, BTreeSet<String>);

/// Renders one filter object to JEXL with the capabilities it needs.
fn filter_object(
    cx: &mut Cx,
    value: &Json,
    path: &Loc,
    slug: Option<&str>,
    depth: usize,
) -> Option<Rendered> {
    if depth > MAX_FILTER_DEPTH {
        cx.error(
            path,
            format!("filter objects nest deeper than {MAX_FILTER_DEPTH} levels"),
        );
        return None;
    }
    let map = cx.expect_object(value, path)?;
    let kind = cx.required_str(map, path, "type")?;
    let caps = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect();
    let generated = |text: String| Compiled::generated(text, path.to_path());
    match kind {
        "channel" | "locale" | "country" => {
            let (key, field) = match kind {
                "channel" => ("channels", "normandy.channel"),
                "locale" => ("locales", "normandy.locale"),
                _ => ("countries", "normandy.country"),
            };
            let items = required_string_list(cx, map, path, key)?;
            let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
            Some((
                generated(format!("{field} in [{}]", quoted.join(","))),
                BTreeSet::new(),
            ))
        }
        "version" => {
            let versions = required_list(cx, map, path, "versions")?;
            let mut majors = Vec::with_capacity(versions.len());
            for (idx, item) in versions.iter().enumerate() {
                match as_whole_number(item) {
                    Some(n) if n >= 40 => majors.push(n),
                    _ => {
                        cx.error(
                            &path.key("versions").index(idx),
                            format!(
                                "versions must be integers of at least 40, found {}",
                                describe(item)
                            ),
                        );
                        return None;
                    }
                }
            }
            let text = version_jexl(&majors);
            Some((
                generated(text),
                caps(&["jexl.context.env.version", "jexl.transform.versionCompare"]),
            ))
        }
        "versionRange" => {
            let min = cx.required_str(map, path, "min_version");
            let max = cx.required_str(map, path, "max_version");
            let (min, max) = (min?, max?);
            Some((
                generated(format!(
                    "(env.version|versionCompare(\"{min}\")>=0)&&(env.version|versionCompare(\"{max}\")<0)"
                )),
                caps(&["jexl.context.env.version", "jexl.transform.versionCompare"]),
            ))
        }
        "stableSample" => {
            let inputs = required_string_list(cx, map, path, "input");
            let rate = number_field(cx, map, path, "rate", Some((0.0, 1.0)));
            let (inputs, rate) = (inputs?, rate?);
            Some((
                generated(format!("[{}]|stableSample({rate})", inputs.join(","))),
                caps(&["jexl.transform.stableSample"]),
            ))
        }
        "bucketSample" => {
            let inputs = required_string_list(cx, map, path, "input");
            let start = number_field(cx, map, path, "start", None);
            let count = number_field(cx, map, path, "count", Some((0.0, f64::INFINITY)));
            let total = number_field(cx, map, path, "total", Some((0.0, f64::INFINITY)));
            let (inputs, start, count, total) = (inputs?, start?, count?, total?);
            Some((
                generated(format!(
                    "[{}]|bucketSample({start},{count},{total})",
                    inputs.join(",")
                )),
                caps(&["jexl.transform.bucketSample"]),
            ))
        }
        "namespaceSample" => {
            let namespace = cx.required_str(map, path, "namespace");
            let start = number_field(cx, map, path, "start", None);
            let count = number_field(cx, map, path, "count", Some((0.0, f64::INFINITY)));
            let (namespace, start, count) = (namespace?, start?, count?);
            if namespace.is_empty() {
                cx.error(
                    &path.key("namespace"),
                    "namespace must not be empty".to_owned(),
                );
                return None;
            }
            Some((
                generated(format!(
                    "[\"{namespace}\",normandy.userId]|bucketSample({start},{count},10000)"
                )),
                caps(&["jexl.transform.bucketSample"]),
            ))
        }
        "jexl" => {
            let expression = cx.required_str(map, path, "expression");
            let declared = match map.get("capabilities") {
                None => {
                    cx.error(
                        &path.key("capabilities"),
                        "missing required field \"capabilities\"".to_owned(),
                    );
                    None
                }
                Some(list) => string_list(cx, list, &path.key("capabilities"), false),
            };
            let comment = cx.required_str(map, path, "comment");
            let (expression, declared, _) = (expression?, declared?, comment?);
            let inner = Compiled::verbatim(expression, path.key("expression").to_path());
            Some((inner.wrap("(", ")"), declared.into_iter().collect()))
        }
        "platform" => {
            let platforms = required_string_list(cx, map, path, "platforms")?;
            let mut parts = Vec::with_capacity(platforms.len());
            for (idx, platform) in platforms.iter().enumerate() {
                let field = match platform.as_str() {
                    "all_mac" => "normandy.os.isMac",
                    "all_windows" => "normandy.os.isWindows",
                    "all_linux" => "normandy.os.isLinux",
                    other => {
                        cx.error(
                            &path.key("platforms").index(idx),
                            format!(
                                "platform must be \"all_mac\", \"all_windows\" or \"all_linux\", found {}",
                                serde_json::Value::from(other)
                            ),
                        );
                        return None;
                    }
                };
                parts.push(field);
            }
            Some((generated(parts.join("||")), BTreeSet::new()))
        }
        "preferenceValue" => {
            let pref = cx.required_str(map, path, "pref");
            let comparison = cx.required_str(map, path, "comparison");
            let value = map.get("value");
            if value.is_none() {
                cx.error(
                    &path.key("value"),
                    "missing required field \"value\"".to_owned(),
                );
            }
            let (pref, comparison, value) = (pref?, comparison?, value?);
            let value = value.to_value().to_string();
            let text = if comparison == "contains" {
                format!("{value} in '{pref}'|preferenceValue")
            } else {
                let symbol = comparison_symbol(cx, comparison, &path.key("comparison"))?;
                format!("'{pref}'|preferenceValue {symbol} {value}")
            };
            Some((generated(text), caps(&["jexl.transform.preferenceValue"])))
        }
        "preferenceExists" | "preferenceIsUserSet" => {
            let pref = cx.required_str(map, path, "pref");
            let value = match map.get("value") {
                Some(Json::Bool(b)) => Some(*b),
                Some(other) => {
                    cx.error(
                        &path.key("value"),
                        format!("expected a boolean, found {}", type_name(other)),
                    );
                    None
                }
                None => {
                    cx.error(
                        &path.key("value"),
                        "missing required field \"value\"".to_owned(),
                    );
                    None
                }
            };
            let (pref, value) = (pref?, value?);
            Some((
                generated(pref_check(kind, pref, value)),
                caps(&[&format!("jexl.transform.{kind}")]),
            ))
        }
        "dateRange" => {
            let not_before = cx.required_str(map, path, "not_before");
            let not_after = cx.required_str(map, path, "not_after");
            let (not_before, not_after) = (not_before?, not_after?);
            for (key, value) in [("not_before", not_before), ("not_after", not_after)] {
                if value.parse::<jiff::Timestamp>().is_err() {
                    cx.error(
                        &path.key(key),
                        format!(
                            "{key} must be an ISO 8601 date-time, found {}",
                            serde_json::Value::from(value)
                        ),
                    );
                    return None;
                }
            }
            Some((
                generated(format!(
                    "(normandy.request_time>=\"{not_before}\"|date)&&(normandy.request_time<\"{not_after}\"|date)"
                )),
                caps(&["jexl.transform.date"]),
            ))
        }
        "profileCreationDate" => {
            let direction = cx.required_str(map, path, "direction");
            let date = cx.required_str(map, path, "date");
            let (direction, date) = (direction?, date?);
            let Ok(day) = date.parse::<jiff::civil::Date>() else {
                cx.error(
                    &path.key("date"),
                    format!(
                        "date must be YYYY-MM-DD, found {}",
                        serde_json::Value::from(date)
                    ),
                );
                return None;
            };
            let days = day
                .since(jiff::civil::date(1970, 1, 1))
                .map(|span| span.get_days())
                .unwrap_or(0);
            let field = "normandy.telemetry.main.environment.profile.creationDate";
            let text = match direction {
                "olderThan" => format!("({field}<={days})"),
                "newerThan" => format!("(!normandy.telemetry.main)||({field}>{days})"),
                other => {
                    cx.error(
                        &path.key("direction"),
                        format!(
                            "direction must be \"olderThan\" or \"newerThan\", found {}",
                            serde_json::Value::from(other)
                        ),
                    );
                    return None;
                }
            };
            Some((generated(text), BTreeSet::new()))
        }
        "windowsBuildNumber" => {
            let value = map.get("value").and_then(as_whole_number);
            if value.is_none() {
                cx.error(&path.key("value"), "value must be an integer".to_owned());
            }
            let comparison = cx.required_str(map, path, "comparison");
            let (value, comparison) = (value?, comparison?);
            let symbol = comparison_symbol(cx, comparison, &path.key("comparison"))?;
            Some((
                generated(format!(
                    "(normandy.os.isWindows && normandy.os.windowsBuildNumber {symbol} {value})"
                )),
                BTreeSet::new(),
            ))
        }
        "windowsVersion" => {
            let versions = required_list(cx, map, path, "versions_list")?;
            let mut rendered = Vec::with_capacity(versions.len());
            for (idx, item) in versions.iter().enumerate() {
                match item {
                    Json::Number(n) => rendered.push(n.to_string()),
                    other => {
                        cx.error(
                            &path.key("versions_list").index(idx),
                            format!("expected a number, found {}", type_name(other)),
                        );
                        return None;
                    }
                }
            }
            Some((
                generated(format!(
                    "(normandy.os.isWindows && normandy.os.windowsVersion in [{}])",
                    rendered.join(", ")
                )),
                BTreeSet::new(),
            ))
        }
        "addonActive" | "addonInstalled" => {
            let addons = required_string_list(cx, map, path, "addons");
            let any_or_all = cx.required_str(map, path, "any_or_all");
            let (addons, any_or_all) = (addons?, any_or_all?);
            let symbol = match any_or_all {
                "all" => "&&",
                "any" => "||",
                other => {
                    cx.error(
                        &path.key("any_or_all"),
                        format!(
                            "any_or_all must be \"any\" or \"all\", found {}",
                            serde_json::Value::from(other)
                        ),
                    );
                    return None;
                }
            };
            let suffix = if kind == "addonActive" {
                ".isActive"
            } else {
                ""
            };
            let parts: Vec<String> = addons
                .iter()
                .map(|addon| format!("normandy.addons[\"{addon}\"]{suffix}"))
                .collect();
            Some((generated(parts.join(symbol)), BTreeSet::new()))
        }
        "negate" => {
            let Some(inner) = map.get("filter_to_negate") else {
                cx.error(
                    &path.key("filter_to_negate"),
                    "missing required field \"filter_to_negate\"".to_owned(),
                );
                return None;
            };
            let (inner, caps) =
                filter_object(cx, inner, &path.key("filter_to_negate"), slug, depth + 1)?;
            Some((inner.wrap("!(", ")"), caps))
        }
        "and" | "or" => {
            let subfilters = required_list(cx, map, path, "subfilters")?;
            let mut parts = Vec::with_capacity(subfilters.len());
            let mut all_caps = BTreeSet::new();
            for (idx, sub) in subfilters.iter().enumerate() {
                let (part, caps) =
                    filter_object(cx, sub, &path.key("subfilters").index(idx), slug, depth + 1)?;
                parts.push(part);
                all_caps.extend(caps);
            }
            let operator = if kind == "and" { "&&" } else { "||" };
            Some((Compiled::join(parts, operator, "(", ")"), all_caps))
        }
        "preset" => {
            let name = cx.required_str(map, path, "name")?;
            if name != "pocket-1" {
                cx.error(
                    &path.key("name"),
                    format!(
                        "unknown preset {}; the only preset is \"pocket-1\"",
                        serde_json::Value::from(name)
                    ),
                );
                return None;
            }
            let not_user_set = |pref: &str| pref_check("preferenceIsUserSet", pref, false);
            let text = format!(
                "(({}||{})&&{}&&{}&&{}&&{})",
                not_user_set("browser.newtabpage.enabled"),
                not_user_set("browser.startup.homepage"),
                not_user_set("browser.newtabpage.activity-stream.showSearch"),
                not_user_set("browser.newtabpage.activity-stream.feeds.topsites"),
                not_user_set("browser.newtabpage.activity-stream.feeds.section.topstories"),
                not_user_set("browser.newtabpage.activity-stream.feeds.section.highlights"),
            );
            Some((
                generated(text),
                caps(&["jexl.transform.preferenceIsUserSet"]),
            ))
        }
        "qaOnly" => {
            let Some(slug) = slug else {
                cx.error(
                    path,
                    "the qaOnly filter needs a recipe slug, and these arguments have none"
                        .to_owned(),
                );
                return None;
            };
            Some((
                generated(format!(
                    "\"{slug}\" in 'app.normandy.testing-for-recipes'|preferenceValue"
                )),
                caps(&["jexl.transform.preferenceValue"]),
            ))
        }
        other => {
            cx.error(
                &path.key("type"),
                format!(
                    "unknown filter object type {}",
                    serde_json::Value::from(other)
                ),
            );
            None
        }
    }
}

fn pref_check(transform: &str, pref: &str, value: bool) -> String {
    if value {
        format!("'{pref}'|{transform}")
    } else {
        format!("!('{pref}'|{transform})")
    }
}

fn comparison_symbol(cx: &mut Cx, comparison: &str, path: &Loc) -> Option<&'static str> {
    let symbol = match comparison {
        "equal" => "==",
        "not_equal" => "!=",
        "greater_than" => ">",
        "greater_than_equal" => ">=",
        "less_than" => "<",
        "less_than_equal" => "<=",
        other => {
            cx.error(
                path,
                format!("unknown comparison {}", serde_json::Value::from(other)),
            );
            return None;
        }
    };
    Some(symbol)
}

/// The `version` filter: one half-open toolkit-version range per run of consecutive majors.
fn version_jexl(majors: &[i64]) -> String {
    let mut sorted = majors.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(i64, i64)> = Vec::new();
    for major in sorted {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == major => *end = major,
            _ => runs.push((major, major)),
        }
    }
    let rendered: Vec<String> = runs
        .iter()
        .map(|(start, end)| {
            format!(
                "(env.version|versionCompare(\"{start}.!\")>=0)&&(env.version|versionCompare(\"{end}.*\")<0)"
            )
        })
        .collect();
    if rendered.len() == 1 {
        rendered.concat()
    } else {
        let wrapped: Vec<String> = rendered.iter().map(|r| format!("({r})")).collect();
        wrapped.join("||")
    }
}

/// A required, non-empty list of strings.
fn required_string_list(cx: &mut Cx, map: &JsonObj, path: &Loc, key: &str) -> Option<Vec<String>> {
    match map.get(key) {
        None => {
            cx.error(&path.key(key), format!("missing required field \"{key}\""));
            None
        }
        Some(value) => string_list(cx, value, &path.key(key), true),
    }
}

/// A required, non-empty list.
fn required_list<'v, 'j>(
    cx: &mut Cx,
    map: &'v JsonObj<'j>,
    path: &Loc,
    key: &str,
) -> Option<&'v [Json<'j>]> {
    let Some(value) = map.get(key) else {
        cx.error(&path.key(key), format!("missing required field \"{key}\""));
        return None;
    };
    let items = cx.expect_array(value, &path.key(key))?;
    if items.is_empty() {
        cx.error(&path.key(key), format!("{key} must not be empty"));
        return None;
    }
    Some(items)
}

/// A list of strings at `path`; `non_empty` requires at least one.
fn string_list(cx: &mut Cx, value: &Json, path: &Loc, non_empty: bool) -> Option<Vec<String>> {
    let items = cx.expect_array(value, path)?;
    if non_empty && items.is_empty() {
        cx.error(path, "the list must not be empty".to_owned());
        return None;
    }
    let mut strings = Vec::with_capacity(items.len());
    let mut ok = true;
    for (idx, item) in items.iter().enumerate() {
        match cx.expect_str(item, &path.index(idx)) {
            Some(s) => strings.push(s.to_owned()),
            None => ok = false,
        }
    }
    ok.then_some(strings)
}

/// A required number, rendered as the JSON wrote it, optionally within `[min, max]`.
fn number_field(
    cx: &mut Cx,
    map: &JsonObj,
    path: &Loc,
    key: &str,
    range: Option<(f64, f64)>,
) -> Option<String> {
    let Some(value) = map.get(key) else {
        cx.error(&path.key(key), format!("missing required field \"{key}\""));
        return None;
    };
    let Json::Number(n) = value else {
        cx.error(
            &path.key(key),
            format!("expected a number, found {}", describe(value)),
        );
        return None;
    };
    if let (Some((min, max)), Some(f)) = (range, n.as_f64())
        && !(min..=max).contains(&f)
    {
        cx.error(
            &path.key(key),
            format!("{key} must be between {min} and {max}, found {n}"),
        );
        return None;
    }
    Some(n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports a synthetic syntax error at `offset` of the expression compiled from the
    /// recipe body at the root of `text`, as `build` does for real parse errors.
    fn position_of_error(text: &str, offset: usize) -> Vec<String> {
        let json: Json = serde_json::from_str(text).expect("test JSON");
        let map = json.as_object().expect("an object");
        let source = FilterSource {
            filter_expression: map
                .get("filter_expression")
                .and_then(Json::as_str)
                .map(str::to_owned),
            extra_filter_expression: map
                .get("extra_filter_expression")
                .and_then(Json::as_str)
                .map(str::to_owned),
            filter_object: map.get("filter_object").map(Json::to_value),
            ..FilterSource::default()
        };
        let mut cx = Cx::new("f.json", text);
        let root = Loc::Root;
        let compiled = if source.has_structured_parts() {
            compile_parts(&mut cx, &source, &root, None, &mut BTreeSet::new())
        } else {
            source
                .filter_expression
                .as_deref()
                .map(|t| Compiled::verbatim(t, root.key("filter_expression").to_path()))
        }
        .expect("compiles");
        let error = ParseError {
            offset,
            message: "unexpected token".to_owned(),
        };
        report_syntax_error(&mut cx, &compiled, &error, &root);
        cx.diagnostics.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn syntax_errors_point_inside_the_json_string() {
        // Decoded: normandy.channel in ["release"] &&& x   — the third `&` is at offset 35.
        let text = "{\n  \"filter_expression\": \"normandy.channel in [\\\"release\\\"] &&& x\"\n}";
        let decoded = "normandy.channel in [\"release\"] &&& x";
        let offset = decoded.find("&&&").expect("&&&") + 2;
        // In the file the string starts at column 24 and holds two escapes before the error.
        assert_eq!(
            position_of_error(text, offset),
            [format!(
                "f.json:2:{}: error: filter_expression: filter expression syntax error at offset {offset}: unexpected token",
                24 + 1 + offset + 2
            )]
        );
        // An error at the end of the expression points just past its last character.
        assert_eq!(
            position_of_error(text, decoded.len()),
            [format!(
                "f.json:2:{}: error: filter_expression: filter expression syntax error at offset {}: unexpected token",
                24 + 1 + decoded.len() + 2,
                decoded.len()
            )]
        );
    }

    #[test]
    fn syntax_errors_in_compiled_v3_filters_point_at_their_source() {
        let text = "{\"filter_object\": [{\"type\": \"channel\", \"channels\": [\"beta\"]},\n\
                    {\"type\": \"jexl\", \"expression\": \"a ++ b\", \"capabilities\": [], \"comment\": \"c\"}],\n\
                    \"extra_filter_expression\": \"x == = y\"}";
        // Compiled: (normandy.channel in ["beta"]) && ((a ++ b)) && (x == = y)
        let compiled = "(normandy.channel in [\"beta\"]) && ((a ++ b)) && (x == = y)";
        let in_jexl = compiled.find("++").expect("++") + 1;
        let in_extra = compiled.find("= y").expect("= y");
        let in_channel = compiled.find("beta").expect("beta");
        let glue = compiled.find(") && ((").expect("glue") + 2;
        assert_eq!(
            position_of_error(text, in_jexl),
            [format!(
                "f.json:2:36: error: filter_object[1].expression: filter expression syntax error at offset {in_jexl}: unexpected token"
            )]
        );
        assert_eq!(
            position_of_error(text, in_extra),
            [format!(
                "f.json:3:34: error: extra_filter_expression: filter expression syntax error at offset {in_extra}: unexpected token"
            )]
        );
        // Generated text cannot be mapped character by character: the filter object is named.
        assert_eq!(
            position_of_error(text, in_channel),
            [format!(
                "f.json:1:20: error: filter_object[0]: filter expression syntax error at offset {in_channel}: unexpected token"
            )]
        );
        // Between parts: the part before.
        assert_eq!(
            position_of_error(text, glue),
            [format!(
                "f.json:1:20: error: filter_object[0]: filter expression syntax error at offset {glue}: unexpected token"
            )]
        );
    }

    #[test]
    fn version_runs() {
        assert_eq!(
            version_jexl(&[72]),
            "(env.version|versionCompare(\"72.!\")>=0)&&(env.version|versionCompare(\"72.*\")<0)"
        );
        assert_eq!(
            version_jexl(&[74, 72, 73, 80]),
            "((env.version|versionCompare(\"72.!\")>=0)&&(env.version|versionCompare(\"74.*\")<0))||\
             ((env.version|versionCompare(\"80.!\")>=0)&&(env.version|versionCompare(\"80.*\")<0))"
        );
    }
}
