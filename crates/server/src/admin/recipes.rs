//! Recipe routes, one set per kind: `/api/v3/recipe/` (Normandy), `/api/v3/experiment/`
//! (Manifest v1), `/api/v3/flight/`, `/api/v3/flag/`, `/api/v3/target_group/`.
//!
//! Each set is list, create, read, replace (PUT), merge (PATCH), enable, disable and history.
//! The handlers of a set are made by `kind_routes!` so that each has its own path in the
//! OpenAPI document; they all call the functions below with their kind.
//!
//! A write body is the kind's document with its fields at the top level, plus `comment` (the
//! revision's comment) and `environment` (where a new recipe goes, `production` by default).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use flightdeck_store::{Kind, Recipe, RecipeFilter, Revision, StoreError, User};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::{Approver, Editor, Id, JsonBody, Params, Viewer};
use super::views::{self, RecipePage, RecipeView, RecipeWritten, RevisionView};
use super::{AdminState, ApiError, checks};
use crate::validate::{self, FieldProblem, Report};

/// The environment a recipe is created in when the body names none.
pub const DEFAULT_ENVIRONMENT: &str = "production";

/// Recipes per page unless `page_size` says otherwise (Normandy's default).
const DEFAULT_PAGE_SIZE: usize = 25;
/// The largest `page_size`.
const MAX_PAGE_SIZE: usize = 1000;

/// The filters of a recipe list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecipeQuery {
    /// Only enabled (`true`) or disabled (`false`) recipes.
    pub enabled: Option<bool>,
    /// Only recipes of this environment.
    pub environment: Option<String>,
    /// Normandy recipes only: only those whose latest revision has this action.
    pub action: Option<String>,
    /// Only recipes whose latest revision's document contains this text, or one of its words
    /// (split at spaces, `/`, `_` and `-`), ignoring case.
    pub text: Option<String>,
    /// The page, from 1.
    pub page: Option<usize>,
    /// Recipes per page (default 25, at most 1000).
    pub page_size: Option<usize>,
}

/// Validates `data` with the core parser of `kind`.
pub(crate) fn validate_kind(kind: Kind, data: &Value) -> Report {
    match kind {
        Kind::Normandy => validate::normandy(data),
        Kind::ManifestV1 => validate::manifest_v1(data),
        Kind::Flight => validate::flight(data),
        Kind::Flag => validate::flag(data),
        Kind::TargetGroup => validate::target_group(data),
    }
}

/// A write body split into the document and the fields about the write.
struct Submitted {
    data: Map<String, Value>,
    comment: Option<String>,
    environment: Option<String>,
}

fn split_body(kind: Kind, body: Value) -> Result<Submitted, ApiError> {
    let Value::Object(mut data) = body else {
        return Err(ApiError::field("(root)", "expected a JSON object"));
    };
    let mut problems = Vec::new();
    let mut take_string = |data: &mut Map<String, Value>, key: &str| match data.remove(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text),
        Some(_) => {
            problems.push(FieldProblem {
                field: key.to_owned(),
                message: "expected a string".to_owned(),
            });
            None
        }
    };
    let comment = take_string(&mut data, "comment");
    let environment = take_string(&mut data, "environment");
    if kind == Kind::Normandy {
        if data.contains_key("action_id") {
            problems.push(FieldProblem {
                field: "action_id".to_owned(),
                message: "actions have no ids here: give the action by name in `action`".to_owned(),
            });
        }
        // Normandy's readers see `action` as `{name, …}`; sending a revision back as read works.
        if let Some(Value::Object(action)) = data.get("action")
            && let Some(Value::String(name)) = action.get("name")
        {
            let name = name.clone();
            data.insert("action".to_owned(), Value::String(name));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    Ok(Submitted {
        data,
        comment,
        environment,
    })
}

/// Validates `data` for `kind` and against the environment's other recipes; the warnings
/// when the write may go ahead.
async fn check_data(
    state: &AdminState,
    kind: Kind,
    environment: &str,
    own_id: Option<i64>,
    data: &Value,
) -> Result<Vec<FieldProblem>, ApiError> {
    let report = validate_kind(kind, data);
    if !report.is_ok() {
        return Err(ApiError::validation(report.errors));
    }
    let problems =
        checks::against_environment(&state.store, kind, environment, own_id, data).await?;
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    Ok(report.warnings)
}

/// The recipe `id` if it is of `kind` (one of another kind is not found under this path).
async fn recipe_of_kind(state: &AdminState, kind: Kind, id: i64) -> Result<Recipe, ApiError> {
    let recipe = state.store.recipe(id).await?;
    if recipe.kind != kind {
        return Err(ApiError::NotFound(format!(
            "recipe {id} is a {} recipe, not a {kind} one",
            recipe.kind
        )));
    }
    Ok(recipe)
}

fn matches_text(data: &Value, text: &str) -> bool {
    let haystack = data.to_string().to_lowercase();
    let text = text.to_lowercase();
    haystack.contains(&text)
        || text
            .split([' ', '/', '_', '-'])
            .filter(|word| !word.is_empty())
            .any(|word| haystack.contains(word))
}

/// `raw` (a query string) with its `page` set to `page`.
fn page_url(path: &str, raw: Option<&str>, page: usize) -> String {
    let mut parts: Vec<String> = raw
        .unwrap_or("")
        .split('&')
        .filter(|part| !part.is_empty() && !part.starts_with("page="))
        .map(str::to_owned)
        .collect();
    parts.push(format!("page={page}"));
    format!("{path}?{}", parts.join("&"))
}

async fn list(
    state: &AdminState,
    kind: Kind,
    path: &str,
    raw_query: Option<String>,
    query: RecipeQuery,
) -> Result<RecipePage, ApiError> {
    let page = query.page.unwrap_or(1);
    if page == 0 {
        return Err(ApiError::BadRequest("`page` starts at 1".to_owned()));
    }
    let page_size = query
        .page_size
        .unwrap_or(DEFAULT_PAGE_SIZE)
        .clamp(1, MAX_PAGE_SIZE);
    let recipes = state
        .store
        .list_recipes(&RecipeFilter {
            environment: query.environment.clone(),
            kind: Some(kind),
            enabled: query.enabled,
            limit: None,
        })
        .await?;
    let filters_data = query.text.is_some() || (kind == Kind::Normandy && query.action.is_some());
    let mut matched: Vec<(Recipe, Option<Revision>)> = Vec::new();
    for recipe in recipes {
        if !filters_data {
            matched.push((recipe, None));
            continue;
        }
        let latest = state.store.revision(recipe.latest_revision_id).await?;
        let action_ok = kind != Kind::Normandy
            || query.action.as_deref().is_none_or(|action| {
                latest.data.get("action").and_then(Value::as_str) == Some(action)
            });
        let text_ok = query
            .text
            .as_deref()
            .is_none_or(|text| matches_text(&latest.data, text));
        if action_ok && text_ok {
            matched.push((recipe, Some(latest)));
        }
    }
    let count = matched.len();
    let start = (page - 1).saturating_mul(page_size);
    let mut results = Vec::new();
    for (recipe, _) in matched.into_iter().skip(start).take(page_size) {
        results.push(views::recipe_view(&state.store, recipe).await?);
    }
    let next = (start.saturating_add(page_size) < count)
        .then(|| page_url(path, raw_query.as_deref(), page + 1));
    let previous = (page > 1).then(|| page_url(path, raw_query.as_deref(), page - 1));
    Ok(RecipePage {
        count,
        next,
        previous,
        results,
    })
}

async fn create(
    state: &AdminState,
    user: &User,
    kind: Kind,
    path: &str,
    body: Value,
) -> Result<(StatusCode, HeaderMap, Json<RecipeWritten>), ApiError> {
    let submitted = split_body(kind, body)?;
    let environment = submitted
        .environment
        .unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_owned());
    match state.store.environment(&environment).await {
        Ok(_) => {}
        Err(StoreError::NotFound { .. }) => {
            return Err(ApiError::field(
                "environment",
                format!("no environment is named `{environment}`"),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    let data = Value::Object(submitted.data);
    let warnings = check_data(state, kind, &environment, None, &data).await?;
    let (recipe, _) = state
        .store
        .create_recipe(
            kind,
            &environment,
            &data,
            submitted.comment.as_deref().unwrap_or(""),
            flightdeck_store::Actor::User(user.id),
            state.now(),
        )
        .await?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("{path}{}/", recipe.id)) {
        headers.insert(header::LOCATION, location);
    }
    let recipe = views::recipe_view(&state.store, recipe).await?;
    Ok((
        StatusCode::CREATED,
        headers,
        Json(RecipeWritten {
            recipe,
            revision_created: true,
            warnings: views::warnings(warnings),
        }),
    ))
}

/// PUT (`merge` false: the body is the whole document) and PATCH (`merge` true: its
/// top-level fields replace the latest revision's, `null` removes one).
async fn update(
    state: &AdminState,
    user: &User,
    kind: Kind,
    id: i64,
    body: Value,
    merge: bool,
) -> Result<Json<RecipeWritten>, ApiError> {
    let recipe = recipe_of_kind(state, kind, id).await?;
    let submitted = split_body(kind, body)?;
    if let Some(environment) = &submitted.environment
        && *environment != recipe.environment
    {
        return Err(ApiError::field(
            "environment",
            format!(
                "a recipe stays in its environment (`{}`); create a new one in `{environment}`",
                recipe.environment
            ),
        ));
    }
    let data = if merge {
        let latest = state.store.revision(recipe.latest_revision_id).await?;
        let mut merged = match latest.data {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        for (key, value) in submitted.data {
            if value.is_null() {
                merged.remove(&key);
            } else {
                merged.insert(key, value);
            }
        }
        merged
    } else {
        submitted.data
    };
    let data = Value::Object(data);
    let warnings = check_data(state, kind, &recipe.environment, Some(id), &data).await?;
    let (recipe, _, created) = state
        .store
        .update_recipe(
            id,
            &data,
            submitted.comment.as_deref().unwrap_or(""),
            flightdeck_store::Actor::User(user.id),
            state.now(),
        )
        .await?;
    Ok(Json(RecipeWritten {
        recipe: views::recipe_view(&state.store, recipe).await?,
        revision_created: created,
        warnings: views::warnings(warnings),
    }))
}

async fn read(state: &AdminState, kind: Kind, id: i64) -> Result<Json<RecipeView>, ApiError> {
    let recipe = recipe_of_kind(state, kind, id).await?;
    Ok(Json(views::recipe_view(&state.store, recipe).await?))
}

async fn set_enabled(
    state: &AdminState,
    user: &User,
    kind: Kind,
    id: i64,
    enabled: bool,
) -> Result<Json<RecipeView>, ApiError> {
    recipe_of_kind(state, kind, id).await?;
    let recipe = state
        .store
        .set_enabled(
            id,
            enabled,
            flightdeck_store::Actor::User(user.id),
            state.now(),
        )
        .await?;
    state.hooks.changed(Some(&recipe.environment)).await;
    Ok(Json(views::recipe_view(&state.store, recipe).await?))
}

async fn history(
    state: &AdminState,
    kind: Kind,
    id: i64,
) -> Result<Json<Vec<RevisionView>>, ApiError> {
    let recipe = recipe_of_kind(state, kind, id).await?;
    let revisions = state.store.history(id).await?;
    Ok(Json(
        revisions
            .into_iter()
            .map(|revision| views::revision_view(&recipe, revision))
            .collect(),
    ))
}

/// One set of recipe routes for a kind: `$module::routes()`.
macro_rules! kind_routes {
    (
        $module:ident, $kind:expr, tag = $tag:tt, body = $body:ty,
        collection = $collection:tt, item = $item:tt, enable = $enable:tt,
        disable = $disable:tt, history = $history:tt $(,)?
    ) => {
        mod $module {
            use super::*;

            /// Lists recipes of this kind, a page at a time.
            #[utoipa::path(
                get, path = $collection, tag = $tag, operation_id = concat!("list_", $tag),
                params(RecipeQuery),
                security(("bearer" = [])),
                responses(
                    (status = 200, description = "A page of recipes", body = RecipePage),
                    (status = "4XX", description = "Not authorised, or a bad filter", body = ErrorBody),
                )
            )]
            pub(super) async fn list(
                State(state): State<AdminState>,
                _caller: Viewer,
                RawQuery(raw): RawQuery,
                Params(query): Params<RecipeQuery>,
            ) -> Result<Json<RecipePage>, ApiError> {
                super::list(&state, $kind, $collection, raw, query).await.map(Json)
            }

            /// Creates a recipe with its first revision (editor role).
            #[utoipa::path(
                post, path = $collection, tag = $tag, operation_id = concat!("create_", $tag),
                request_body = $body,
                security(("bearer" = [])),
                responses(
                    (status = 201, description = "The new recipe", body = RecipeWritten),
                    (status = "4XX", description = "Not authorised, or invalid data (`validation_failed` names the fields)", body = ErrorBody),
                )
            )]
            pub(super) async fn create(
                State(state): State<AdminState>,
                caller: Editor,
                JsonBody(body): JsonBody<Value>,
            ) -> Result<(StatusCode, HeaderMap, Json<RecipeWritten>), ApiError> {
                super::create(&state, &caller.user, $kind, $collection, body).await
            }

            /// Reads a recipe with its latest and approved revisions.
            #[utoipa::path(
                get, path = $item, tag = $tag, operation_id = concat!("read_", $tag),
                params(("id" = i64, Path, description = "The recipe's id")),
                security(("bearer" = [])),
                responses(
                    (status = 200, description = "The recipe", body = RecipeView),
                    (status = "4XX", description = "Not authorised, or no such recipe of this kind", body = ErrorBody),
                )
            )]
            pub(super) async fn read(
                State(state): State<AdminState>,
                _caller: Viewer,
                Id(id): Id,
            ) -> Result<Json<RecipeView>, ApiError> {
                super::read(&state, $kind, id).await
            }

            /// Replaces the recipe's document: a new revision when it differs from the latest
            /// (editor role). A new revision drops the previous one's pending approval request.
            #[utoipa::path(
                put, path = $item, tag = $tag, operation_id = concat!("replace_", $tag),
                params(("id" = i64, Path, description = "The recipe's id")),
                request_body = $body,
                security(("bearer" = [])),
                responses(
                    (status = 200, description = "The recipe", body = RecipeWritten),
                    (status = "4XX", description = "Not authorised, no such recipe, or invalid data", body = ErrorBody),
                )
            )]
            pub(super) async fn replace(
                State(state): State<AdminState>,
                caller: Editor,
                Id(id): Id,
                JsonBody(body): JsonBody<Value>,
            ) -> Result<Json<RecipeWritten>, ApiError> {
                super::update(&state, &caller.user, $kind, id, body, false).await
            }

            /// Changes some top-level fields of the latest revision's document (`null` removes
            /// one): a new revision when the result differs (editor role).
            #[utoipa::path(
                patch, path = $item, tag = $tag, operation_id = concat!("patch_", $tag),
                params(("id" = i64, Path, description = "The recipe's id")),
                request_body(content = $body, description = "The fields to change"),
                security(("bearer" = [])),
                responses(
                    (status = 200, description = "The recipe", body = RecipeWritten),
                    (status = "4XX", description = "Not authorised, no such recipe, or invalid data", body = ErrorBody),
                )
            )]
            pub(super) async fn patch(
                State(state): State<AdminState>,
                caller: Editor,
                Id(id): Id,
                JsonBody(body): JsonBody<Value>,
            ) -> Result<Json<RecipeWritten>, ApiError> {
                super::update(&state, &caller.user, $kind, id, body, true).await
            }

            /// Enables the approved revision (approver role); 409 `not_approved` without one,
            /// `rollout_conflict` when a rollback and its rollout would both be enabled.
            #[utoipa::path(
                post, path = $enable, tag = $tag, operation_id = concat!("enable_", $tag),
                params(("id" = i64, Path, description = "The recipe's id")),
                security(("bearer" = [])),
                responses(
                    (status = 200, description = "The recipe", body = RecipeView),
                    (status = "4XX", description = "Not authorised, no such recipe, or a conflict", body = ErrorBody),
                )
            )]
            pub(super) async fn enable(
                State(state): State<AdminState>,
                caller: Approver,
                Id(id): Id,
            ) -> Result<Json<RecipeView>, ApiError> {
                super::set_enabled(&state, &caller.user, $kind, id, true).await
            }

            /// Disables the recipe (approver role); 409 `already_disabled` if it is not enabled.
            #[utoipa::path(
                post, path = $disable, tag = $tag, operation_id = concat!("disable_", $tag),
                params(("id" = i64, Path, description = "The recipe's id")),
                security(("bearer" = [])),
                responses(
                    (status = 200, description = "The recipe", body = RecipeView),
                    (status = "4XX", description = "Not authorised, no such recipe, or a conflict", body = ErrorBody),
                )
            )]
            pub(super) async fn disable(
                State(state): State<AdminState>,
                caller: Approver,
                Id(id): Id,
            ) -> Result<Json<RecipeView>, ApiError> {
                super::set_enabled(&state, &caller.user, $kind, id, false).await
            }

            /// Every revision of the recipe, newest first.
            #[utoipa::path(
                get, path = $history, tag = $tag, operation_id = concat!("history_", $tag),
                params(("id" = i64, Path, description = "The recipe's id")),
                security(("bearer" = [])),
                responses(
                    (status = 200, description = "The revisions, newest first", body = Vec<RevisionView>),
                    (status = "4XX", description = "Not authorised, or no such recipe", body = ErrorBody),
                )
            )]
            pub(super) async fn history(
                State(state): State<AdminState>,
                _caller: Viewer,
                Id(id): Id,
            ) -> Result<Json<Vec<RevisionView>>, ApiError> {
                super::history(&state, $kind, id).await
            }

            pub(super) fn routes() -> OpenApiRouter<AdminState> {
                OpenApiRouter::new()
                    .routes(routes!(list, create))
                    .routes(routes!(read, replace, patch))
                    .routes(routes!(enable))
                    .routes(routes!(disable))
                    .routes(routes!(history))
            }
        }
    };
}

kind_routes!(
    normandy_routes,
    Kind::Normandy,
    tag = "recipe",
    body = NormandyRecipeWrite,
    collection = "/api/v3/recipe/",
    item = "/api/v3/recipe/{id}/",
    enable = "/api/v3/recipe/{id}/enable/",
    disable = "/api/v3/recipe/{id}/disable/",
    history = "/api/v3/recipe/{id}/history/",
);

kind_routes!(
    experiment_routes,
    Kind::ManifestV1,
    tag = "experiment",
    body = ManifestV1ExperimentWrite,
    collection = "/api/v3/experiment/",
    item = "/api/v3/experiment/{id}/",
    enable = "/api/v3/experiment/{id}/enable/",
    disable = "/api/v3/experiment/{id}/disable/",
    history = "/api/v3/experiment/{id}/history/",
);

kind_routes!(
    flight_routes,
    Kind::Flight,
    tag = "flight",
    body = FlightWrite,
    collection = "/api/v3/flight/",
    item = "/api/v3/flight/{id}/",
    enable = "/api/v3/flight/{id}/enable/",
    disable = "/api/v3/flight/{id}/disable/",
    history = "/api/v3/flight/{id}/history/",
);

kind_routes!(
    flag_routes,
    Kind::Flag,
    tag = "flag",
    body = FlagWrite,
    collection = "/api/v3/flag/",
    item = "/api/v3/flag/{id}/",
    enable = "/api/v3/flag/{id}/enable/",
    disable = "/api/v3/flag/{id}/disable/",
    history = "/api/v3/flag/{id}/history/",
);

kind_routes!(
    target_group_routes,
    Kind::TargetGroup,
    tag = "target_group",
    body = TargetGroupWrite,
    collection = "/api/v3/target_group/",
    item = "/api/v3/target_group/{id}/",
    enable = "/api/v3/target_group/{id}/enable/",
    disable = "/api/v3/target_group/{id}/disable/",
    history = "/api/v3/target_group/{id}/history/",
);

/// Every recipe route of every kind.
pub(super) fn routes() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .merge(normandy_routes::routes())
        .merge(experiment_routes::routes())
        .merge(flight_routes::routes())
        .merge(flag_routes::routes())
        .merge(target_group_routes::routes())
}

// The write bodies below exist for the OpenAPI document only: handlers take the body as JSON
// and the core parser of the kind validates it, so these types are never built.

/// A Normandy recipe: Normandy API v3's write fields, with the action by name.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct NormandyRecipeWrite {
    /// The recipe's name.
    name: String,
    /// `preference-rollout`, `preference-rollback`, `preference-experiment` or
    /// `multi-preference-experiment` (`{"name": …}` is accepted too; `action_id` is not).
    action: String,
    /// The action's arguments, checked like Normandy's action schemas.
    #[schema(value_type = Object)]
    arguments: Value,
    /// A JEXL filter expression; this or `filter_object` is required.
    extra_filter_expression: Option<String>,
    /// Structured filters (`channel`, `locale`, `version`, `stableSample`, …).
    #[schema(value_type = Option<Vec<Object>>)]
    filter_object: Option<Value>,
    /// Capabilities the client must have, beyond those derived.
    extra_capabilities: Option<Vec<String>>,
    /// The Experimenter slug.
    experimenter_slug: Option<String>,
    /// The identicon seed.
    identicon_seed: Option<String>,
    /// Older filters: locale codes.
    locales: Option<Vec<String>>,
    /// Older filters: country codes.
    countries: Option<Vec<String>>,
    /// Older filters: channel slugs.
    channels: Option<Vec<String>>,
    /// The revision's comment.
    comment: Option<String>,
    /// The environment of a new recipe (default `production`); an update must name the
    /// recipe's own or none.
    environment: Option<String>,
}

/// One Experiments Manifest v1 experiment object, plus `comment` and `environment`.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct ManifestV1ExperimentWrite {
    /// The experiment's id (unique in the environment).
    id: String,
    /// Where the package is downloaded from.
    #[serde(rename = "xpiURL")]
    xpi_url: String,
    /// `sha256:<hex>` (or another algorithm) of the package.
    #[serde(rename = "xpiHash")]
    xpi_hash: String,
    /// The revision's comment.
    comment: Option<String>,
    /// The environment of a new recipe (default `production`).
    environment: Option<String>,
    /// The other Manifest v1 fields (`startTime`, `endTime`, `appName`, `minVersion`,
    /// `channel`, `sample`, `jsfilter`, …).
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, Object>)]
    other: HashMap<String, Value>,
}

/// One Test Pilot flight specification, plus `comment` and `environment`.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct FlightWrite {
    /// The study's name (`name` in the reference implementation's spelling; unique in the
    /// environment).
    studyname: String,
    /// When the flight ends (`end`).
    #[serde(rename = "endBy")]
    #[schema(value_type = Object)]
    end_by: Value,
    /// The flight plan.
    #[schema(value_type = Option<Vec<Object>>)]
    flightplan: Option<Value>,
    /// The revision's comment.
    comment: Option<String>,
    /// The environment of a new recipe (default `production`).
    environment: Option<String>,
    /// The other flight fields (`author`, `description`, `filter`, `randomDeploy`, `kill`, …).
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, Object>)]
    other: HashMap<String, Value>,
}

/// One CloudBees experiment (a feature flag): the YAML file's keys as JSON.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct FlagWrite {
    /// The flag's key (unique in the environment; OFREP evaluates it by this key).
    flag: String,
    /// The value when no condition applies.
    #[schema(value_type = Object)]
    value: Option<Value>,
    /// Targeting rules.
    #[schema(value_type = Option<Vec<Object>>)]
    conditions: Option<Value>,
    /// The revision's comment.
    comment: Option<String>,
    /// The environment of a new recipe (default `production`).
    environment: Option<String>,
    /// The other keys (`type`, `availableValues`, `name`, `description`, `enabled`,
    /// `platforms`, `stickinessProperty`, …).
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, Object>)]
    other: HashMap<String, Value>,
}

/// One CloudBees target group: the YAML file's keys as JSON.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct TargetGroupWrite {
    /// The name flags refer to it by (unique in the environment).
    name: String,
    /// Property conditions.
    #[schema(value_type = Vec<Object>)]
    conditions: Value,
    /// `and` (default) or `or`.
    operator: Option<String>,
    /// The revision's comment.
    comment: Option<String>,
    /// The environment of a new recipe (default `production`).
    environment: Option<String>,
    /// The other keys (`type`, `description`, `version`).
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, Object>)]
    other: HashMap<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_urls_keep_the_other_parameters() {
        assert_eq!(
            page_url("/api/v3/recipe/", Some("enabled=true&page=2&text=x"), 3),
            "/api/v3/recipe/?enabled=true&text=x&page=3"
        );
        assert_eq!(page_url("/api/v3/flag/", None, 2), "/api/v3/flag/?page=2");
    }

    #[test]
    fn text_matches_words_case_insensitively() {
        let data = serde_json::json!({"name": "Block Autoplay", "arguments": {"slug": "ap-1"}});
        assert!(matches_text(&data, "autoplay"));
        assert!(matches_text(&data, "nothing-AP"));
        assert!(!matches_text(&data, "tabs"));
    }

    #[test]
    fn bodies_split_into_document_comment_and_environment() {
        let body = serde_json::json!({
            "name": "x", "action": {"name": "preference-rollout"}, "comment": "why",
            "environment": "staging"
        });
        let submitted = split_body(Kind::Normandy, body).expect("splits");
        assert_eq!(submitted.comment.as_deref(), Some("why"));
        assert_eq!(submitted.environment.as_deref(), Some("staging"));
        assert_eq!(submitted.data["action"], "preference-rollout");
        assert!(!submitted.data.contains_key("comment"));

        let error = split_body(
            Kind::Normandy,
            serde_json::json!({"action_id": 3, "comment": 1}),
        )
        .err()
        .expect("refused");
        let ApiError::Validation { fields, .. } = error else {
            panic!("{error:?}")
        };
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["comment", "action_id"]);
    }
}
