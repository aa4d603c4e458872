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
