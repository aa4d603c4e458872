//! The OpenAPI document's error answers: every operation declares the error statuses the
//! shared machinery can give it — the extractors (a malformed body, query or path is a 400, a
//! body over the limit a 413, an invalid field a 422), authentication (401) and lookups by id
//! (404) — each with the one error body, `{"error": {"code", "message", …}}`. Handlers declare
//! the statuses only they give (409, 429, 503…) in their own annotations.

use serde_json::json;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{Content, OpenApi, Ref, RefOr};

/// The schema name of the error body.
const ERROR: &str = "Error";

/// The document as served: [`declare_errors`], then the language-code rule on every request
/// field and parameter that takes one.
pub fn finish(mut doc: OpenApi) -> serde_json::Value {
    declare_errors(&mut doc);
    let mut doc = serde_json::to_value(&doc).unwrap_or_default();
    declare_languages(&mut doc);
    declare_pages(&mut doc);
    doc
}

/// A path that is both an API operation and a page of the web app (the unsubscribe link: mail
/// clients POST to it, people open it) declares the page's `GET` too, so the document lists
/// every method the path answers.
fn declare_pages(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if crate::web::PAGES.contains(&path.as_str()) && item.get("get").is_none() {
            let tags = item
                .as_object()
                .and_then(|ops| ops.values().find_map(|op| op.get("tags").cloned()))
                .unwrap_or(json!([]));
            item["get"] = json!({
                "tags": tags,
                "summary": "The web app's page for this link",
                "description": "Serves the web app, which shows the page (and asks before it acts).",
                "responses": {"200": {"description": "the page", "content": {"text/html": {"schema": {"type": "string"}}}}},
            });
        }
    }
}

/// Request schemas whose language fields take a language code (responses carry the
/// normalised code, which the same rule describes).
const LANGUAGE_SCHEMAS: &[(&str, &[&str])] = &[
    ("NewConversation", &["language"]),
    ("DemoChat", &["language", "native_language"]),
    ("ProfilePatch", &["native_language"]),
    ("Target", &["language"]),
];

/// A language code as `tutoring::profile::language` accepts it: a known code in any case,
/// optionally with a region (`pt-BR`, `es_419`).
fn language_pattern() -> String {
    let either_case = |code: &str| {
        code.chars()
            .map(|c| format!("[{}{}]", c.to_ascii_lowercase(), c.to_ascii_uppercase()))
            .collect::<String>()
    };
    let codes: Vec<String> = crate::tutoring::profile::LANGUAGES
        .iter()
        .map(|(code, _)| either_case(code))
        .collect();
    format!("^({})([-_]([A-Za-z]{{2}}|[0-9]{{3}}))?$", codes.join("|"))
}

/// The object at `path` under `v`, if there is one (indexing would insert nulls).
fn at<'a>(v: &'a mut serde_json::Value, path: &[&str]) -> Option<&'a mut serde_json::Value> {
    path.iter()
        .try_fold(v, |v, key| v.get_mut(*key))
        .filter(|v| v.is_object())
}

fn declare_languages(doc: &mut serde_json::Value) {
    let pattern = serde_json::Value::String(language_pattern());
    for (schema, fields) in LANGUAGE_SCHEMAS {
        for field in *fields {
            if let Some(p) = at(doc, &["components", "schemas", schema, "properties", field]) {
                p["pattern"] = pattern.clone();
            }
        }
    }
    // Items of string lists, which utoipa's field attributes cannot reach.
    for field in ["goals", "interests"] {
        if let Some(items) = at(
            doc,
            &[
                "components",
                "schemas",
                "ProfilePatch",
                "properties",
                field,
                "items",
            ],
        ) {
            items["maxLength"] = 80.into();
        }
    }
    if let Some(p) = at(
        doc,
        &[
            "components",
            "schemas",
            "ProfilePatch",
            "properties",
            "interface_language",
        ],
    ) {
        p["pattern"] = "^([Ee][Nn]|[Ff][Rr])$".into();
    }
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
    {
        let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) else {
            continue;
        };
        for p in params.iter_mut().filter(|p| p["name"] == "language") {
            if let Some(schema) = p.get_mut("schema").filter(|s| s.is_object()) {
                schema["pattern"] = pattern.clone();
            }
        }
    }
}

/// Adds the error body's schema and each operation's shared error statuses to `doc`.
pub fn declare_errors(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    if let Ok(schema) = serde_json::from_value(json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable, for programs: `invalid`, `unauthorized`, `rate_limited`…"},
                "message": {"type": "string", "description": "for people: what is wrong and what to do"},
                "field": {"type": "string", "description": "the field at fault, for `invalid`"},
                "retry_after": {"type": "integer", "description": "seconds to wait, for `rate_limited`"},
                "support_id": {"type": ["string", "null"], "description": "quote it to support"},
                "retryable": {"type": "boolean"},
                "seq": {"type": "integer"}
            }
        }}
    })) {
        components.schemas.insert(ERROR.into(), schema);
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let by_id = path.contains('{');
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            declare(op, by_id);
        }
    }
}

fn declare(op: &mut Operation, by_id: bool) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    let has_query = op
        .parameters
        .as_ref()
        .is_some_and(|ps| ps.iter().any(|p| p.parameter_in == ParameterIn::Query));
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            Content::new(Some(Ref::from_schema_name(ERROR))),
                        )
                        .build(),
                )
            });
    };
    if has_body || has_query || by_id {
        add(
            "400",
            "malformed request: a body that is not JSON of this shape, or a bad query or path parameter",
        );
    }
    if has_body {
        add("413", "the body is over the size limit");
    }
    if has_body || has_query {
        add(
            "422",
            "a field or parameter is well-formed but not acceptable; `field` names it",
        );
    }
    if secured {
        add("401", "no valid access token, or its session has ended");
    }
    if by_id {
        add("404", "no such thing, or not the caller's");
    }
}
