//! Comments: list (`limit`/`offset`/`order`/`content_format`, no pagination object), create
//! (body validated before the ticket lookup; malformed JSON gives 500) and edit (own comments
//! only). Not rate-limited unless `--limit-comments`. DELETE is left to the router's 405.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    after_commit_fault, authenticate, find_ticket, finish, require_update, respond,
    take_comment_token, ticket_id, unchecked_id, Shared,
};
use crate::sandbox::error::ApiError;
use crate::sandbox::model::Comment;

type Pairs = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

/// The validated comment list options.
struct ListOptions {
    limit: Option<usize>,
    offset: usize,
    desc: bool,
    markdown: bool,
}

fn check_param(
    pairs: &[(String, String)],
    name: &str,
    ok: impl Fn(&str) -> bool,
    message: &str,
) -> Result<Option<String>, ApiError> {
    // The handler reads `searchParams.get(name)` and checks only truthy values.
    match pairs.iter().find(|(k, v)| k == name && !v.is_empty()) {
        None => Ok(None),
        Some((_, v)) if ok(v) => Ok(Some(v.clone())),
        Some(_) => Err(ApiError::issues(
            "Validation failed",
            vec![json!({"path": [name], "message": message})],
        )),
    }
}

/// JavaScript `Number(v)` is an integer within `min..=max`.
fn js_int_in(v: &str, min: f64, max: f64) -> bool {
    let t = v.trim();
    let n = if t.is_empty() {
        0.0
    } else {
        t.parse::<f64>().unwrap_or(f64::NAN)
    };
    n.fract() == 0.0 && n >= min && n <= max
}

fn list_options(pairs: &[(String, String)]) -> Result<ListOptions, ApiError> {
    let limit = check_param(
        pairs,
        "limit",
        |v| js_int_in(v, 1.0, 200.0),
        "limit must be an integer between 1 and 200",
    )?;
    let offset = check_param(
        pairs,
        "offset",
        |v| js_int_in(v, 0.0, 9.0e15),
        "offset must be a non-negative integer",
    )?;
    let order = check_param(
        pairs,
        "order",
        |v| v == "asc" || v == "desc",
        "order must be 'asc' or 'desc'",
    )?;
    let format = check_param(
        pairs,
        "content_format",
        |v| v == "full" || v == "markdown",
        "content_format must be 'full' or 'markdown'",
    )?;
    let num = |v: String| v.trim().parse::<f64>().unwrap_or(0.0) as usize;
    Ok(ListOptions {
        limit: limit.map(num),
        offset: offset.map_or(0, num),
        desc: order.as_deref() == Some("desc"),
        markdown: format.as_deref() == Some("markdown"),
    })
}

/// `GET /api/v1/tickets/{id}/comments`.
pub(crate) async fn list(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    q: Pairs,
) -> Response {
    finish((|| {
        let caller = authenticate(&st, &headers)?;
        let rate = take_comment_token(&st, &caller)?;
        let pairs = q.map(|Query(p)| p).unwrap_or_default();
        let o = list_options(&pairs)?;
        let ticket = find_ticket(&st, ticket_id(&id)?)?;
        let store = st.store();
        let mut all: Vec<&Comment> = store.comments(ticket.ticket_id).iter().collect();
        if o.desc {
            all.reverse();
        }
        let data: Vec<Value> = all
            .into_iter()
            .skip(o.offset)
            .take(o.limit.unwrap_or(usize::MAX))
            .map(|c| {
                if o.markdown {
                    c.markdown_json()
                } else {
                    c.listed_json(st.tenant)
                }
            })
            .collect();
        Ok(respond(StatusCode::OK, json!({ "data": data }), rate))
    })())
}

/// Parses a JSON body the way `req.json()` does: any failure is a 500.
fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::Internal(
            "Unexpected end of JSON input".to_string(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::Internal(format!("invalid JSON: {e}")))
}

/// The zod name of a JSON value's type.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong_type(path: &str, expected: &str, got: &Value) -> Value {
    let received = type_name(got);
    let mut issue = json!({"code": "invalid_type", "expected": expected, "received": received,
        "message": format!("Expected {expected}, received {received}")});
    issue["path"] = if path.is_empty() {
        json!([])
    } else {
        json!([path])
    };
    issue
}

/// Text a reader sees: BlockNote JSON is reduced to its text runs, plain text is trimmed.
fn visible_len(note: &str) -> usize {
    fn collect(v: &Value, out: &mut String) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
            Value::Object(m) => {
                if let Some(Value::String(t)) = m.get("text") {
                    out.push_str(t);
                }
                for (k, v) in m {
                    if k != "text" {
                        collect(v, out);
                    }
                }
            }
            _ => {}
        }
    }
    let text = match serde_json::from_str::<Value>(note) {
        Ok(v @ Value::Array(_)) => {
            let mut s = String::new();
            collect(&v, &mut s);
            s
        }
        _ => note.to_string(),
    };
    text.trim().encode_utf16().count()
}

/// Validates `comment_text` (required string, 1..=5000 visible characters).
fn check_text(body: &Value, issues: &mut Vec<Value>) -> Option<String> {
    match body.get("comment_text") {
        None => {
            issues.push(json!({"code": "invalid_type", "expected": "string",
                "received": "undefined", "path": ["comment_text"], "message": "Required"}));
            None
        }
        Some(Value::String(s)) => {
            let required = "Comment text is required";
            if s.is_empty() {
                issues.push(json!({"code": "too_small", "minimum": 1, "type": "string",
                    "inclusive": true, "exact": false, "message": required,
                    "path": ["comment_text"]}));
            }
            let n = visible_len(s);
            if n == 0 {
                issues
                    .push(json!({"code": "custom", "message": required, "path": ["comment_text"]}));
            } else if n > 5000 {
                issues.push(json!({"code": "custom",
                    "message": "Comment text is too long (max 5000 characters)",
                    "path": ["comment_text"]}));
            }
            Some(s.clone())
        }
        Some(other) => {
            issues.push(wrong_type("comment_text", "string", other));
            None
        }
    }
}

/// A comment body that passed validation.
struct NewComment {
    text: String,
    is_internal: bool,
    is_resolution: bool,
    metadata: Option<Value>,
    parent: Option<Uuid>,
}

/// `time_spent` (checked, then discarded), `metadata` and `parent_comment_id`.
fn optional_fields(body: &Value, issues: &mut Vec<Value>) -> (Option<Value>, Option<Uuid>) {
    match body.get("time_spent") {
        None => {}
        Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f >= 0.0) => {}
        Some(Value::Number(_)) => issues.push(json!({"code": "too_small", "minimum": 0,
            "type": "number", "inclusive": true, "exact": false, "path": ["time_spent"],
            "message": "Number must be greater than or equal to 0"})),
        Some(other) => issues.push(wrong_type("time_spent", "number", other)),
    }
    let metadata = match body.get("metadata") {
        None => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(other) => {
            issues.push(wrong_type("metadata", "object", other));
            None
        }
    };
    let parent = match body.get("parent_comment_id") {
        None => None,
        Some(Value::String(s)) if super::is_uuid_text(s) => Uuid::parse_str(s).ok(),
        Some(Value::String(_)) => {
            issues.push(json!({"validation": "uuid", "code": "invalid_string",
                "message": "Invalid uuid", "path": ["parent_comment_id"]}));
            None
        }
        Some(other) => {
            issues.push(wrong_type("parent_comment_id", "string", other));
            None
        }
    };
    (metadata, parent)
}

fn validate_create(body: &Value) -> Result<NewComment, ApiError> {
    if !body.is_object() {
        return Err(ApiError::issues(
            "Validation failed",
            vec![wrong_type("", "object", body)],
        ));
    }
    let mut issues = Vec::new();
    let text = check_text(body, &mut issues);
    let mut flag = |name: &str| match body.get(name) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            issues.push(wrong_type(name, "boolean", other));
            false
        }
    };
    let is_internal = flag("is_internal");
    let is_resolution = flag("is_resolution");
    let suppress_contact = flag("suppressContactNotifications");
    let suppress_internal = flag("suppressInternalNotifications");
    let (metadata, parent) = optional_fields(body, &mut issues);
    if suppress_internal && !suppress_contact {
        issues.push(json!({"code": "custom",
            "message": "suppressInternalNotifications requires suppressContactNotifications to be true",
            "path": ["suppressInternalNotifications"]}));
    }
    match text {
        Some(text) if issues.is_empty() => Ok(NewComment {
            text,
            is_internal,
            is_resolution,
            metadata,
            parent,
        }),
        _ => Err(ApiError::issues("Validation failed", issues)),
    }
}

/// `POST /api/v1/tickets/{id}/comments`.
pub(crate) async fn create(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    finish((|| {
        let caller = authenticate(&st, &headers)?;
        let rate = take_comment_token(&st, &caller)?;
        require_update(&caller)?;
        let new = validate_create(&parse_json(&body)?)?;
        let ticket = ticket_id(&id)?;
        find_ticket(&st, ticket)?;
        let comment = {
            let mut store = st.store();
            // Taken under the lock so that creation order and `created_at` order agree.
            let now = Utc::now();
            let (thread_id, is_internal) = match new.parent {
                None => (store.new_id(), new.is_internal),
                Some(pid) => {
                    let parent = store.comment(pid).ok_or_else(|| {
                        ApiError::NotFound("Parent comment not found".to_string())
                    })?;
                    if parent.ticket_id != ticket {
                        return Err(ApiError::bad(
                            "Parent comment must belong to the same ticket",
                        ));
                    }
                    (parent.thread_id, parent.is_internal)
                }
            };
            let comment = Comment {
                comment_id: store.new_id(),
                ticket_id: ticket,
                user_id: caller.user.user_id,
                author_name: caller.user.name.clone(),
                note: new.text,
                is_internal,
                is_resolution: new.is_resolution,
                created_at: now,
                updated_at: now,
                metadata: new.metadata,
                thread_id,
                parent_comment_id: new.parent,
            };
            store.save_comment(comment.clone());
            store.touch_ticket(ticket, now, caller.user.user_id);
            comment
        };
        if let Some(lost) = after_commit_fault(&st) {
            return Ok(lost);
        }
        let data = comment.created_json(st.tenant);
        Ok(respond(StatusCode::CREATED, json!({ "data": data }), rate))
    })())
}

/// `PUT /api/v1/tickets/{id}/comments/{comment_id}`: only `comment_text` changes.
pub(crate) async fn update(
    State(st): State<Shared>,
    Path((id, comment_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    finish((|| {
        let caller = authenticate(&st, &headers)?;
        let rate = take_comment_token(&st, &caller)?;
        require_update(&caller)?;
        let body = parse_json(&body)?;
        if !body.is_object() {
            let issue = wrong_type("", "object", &body);
            return Err(ApiError::issues("Validation failed", vec![issue]));
        }
        let mut issues = Vec::new();
        let text = check_text(&body, &mut issues);
        let text = match text {
            Some(t) if issues.is_empty() => t,
            _ => return Err(ApiError::issues("Validation failed", issues)),
        };
        let ticket = ticket_id(&id)?;
        find_ticket(&st, ticket)?;
        let cid = unchecked_id(&comment_id)?;
        let mut store = st.store();
        let mut c = store
            .comment(cid)
            .filter(|c| c.ticket_id == ticket)
            .cloned()
            .ok_or_else(|| ApiError::NotFound("Comment not found".to_string()))?;
        if c.user_id != caller.user.user_id {
            return Err(ApiError::bad("You can only edit your own comments"));
        }
        c.note = text;
        c.updated_at = Utc::now();
        store.save_comment(c.clone());
        let mut data = c.created_json(st.tenant);
        if let Value::Object(m) = &mut data {
            m.remove("author_contact_name");
            m.remove("author_contact_email");
        }
        Ok(respond(StatusCode::OK, json!({ "data": data }), rate))
    })())
}
