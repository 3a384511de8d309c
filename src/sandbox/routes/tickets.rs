//! `GET /api/v1/tickets` (paginated, filtered, sorted), `GET /api/v1/tickets/{id}` and
//! `GET /api/v1/tickets/search` (not rate-limited, no pagination).

use std::cmp::Ordering;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::query::{ilike_contains, Params};
use super::{authenticate, find_ticket, finish, respond, take_token, ticket_id, Shared};
use crate::sandbox::error::ApiError;
use crate::sandbox::model::{Ticket, LIST_FIELDS};

type Pairs = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

fn pairs(q: Pairs) -> Vec<(String, String)> {
    q.map(|Query(p)| p).unwrap_or_default()
}

/// The list filters after validation.
#[derive(Default)]
struct Filters {
    text: Vec<(&'static str, String)>,
    is_open: bool,
    is_closed: bool,
    has_assignment: Option<bool>,
    ranges: Vec<(&'static str, bool, DateTime<Utc>)>,
    ids: Vec<(&'static str, Uuid)>,
    status_ids: Option<Vec<Uuid>>,
    echo: Map<String, Value>,
}

const TEXT_FILTERS: &[&str] = &["ticket_number", "title", "search"];
const EXACT_FILTERS: &[&str] = &["client_name", "status_name", "priority_name", "board_name"];
const ID_FILTERS: &[&str] = &[
    "board_id",
    "client_id",
    "status_id",
    "entered_by",
    "assigned_to",
    "priority_id",
];
const RANGES: &[(&str, &str, bool)] = &[
    ("updated_from", "updated_at", true),
    ("updated_to", "updated_at", false),
    ("entered_from", "entered_at", true),
    ("entered_to", "entered_at", false),
    ("created_from", "entered_at", true),
    ("created_to", "entered_at", false),
    ("closed_from", "closed_at", true),
    ("closed_to", "closed_at", false),
];

fn parse_filters(p: &mut Params) -> Filters {
    let mut f = Filters::default();
    for name in TEXT_FILTERS.iter().chain(EXACT_FILTERS) {
        if let Some(v) = p.string(name) {
            f.echo.insert((*name).into(), json!(v));
            f.text.push((name, v));
        }
    }
    for name in ["is_open", "is_closed", "has_assignment"] {
        if let Some(b) = p.boolean(name) {
            f.echo.insert(name.into(), json!(b));
            match name {
                "is_open" => f.is_open = b,
                "is_closed" => f.is_closed = b,
                _ => f.has_assignment = Some(b),
            }
        }
    }
    for (param, column, from) in RANGES {
        if let Some(t) = p.datetime(param) {
            f.echo.insert((*param).into(), json!(p.raw(param)));
            f.ranges.push((column, *from, t));
        }
    }
    for name in ID_FILTERS {
        if let Some(u) = p.uuid(name) {
            f.echo.insert((*name).into(), json!(u));
            f.ids.push((name, u));
        }
    }
    if let Some(ids) = p.uuid_list("status_ids") {
        f.echo.insert("status_ids".into(), json!(ids));
        f.status_ids = Some(ids);
    }
    f
}

fn matches(t: &Ticket, row: &Map<String, Value>, f: &Filters) -> bool {
    let text = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let text_ok = f.text.iter().all(|(name, v)| match *name {
        "search" => [&t.title, &t.ticket_number, &t.client_name]
            .iter()
            .any(|h| ilike_contains(h, v)),
        "ticket_number" | "title" => ilike_contains(&text(name), v),
        _ => text(name) == *v,
    });
    let updated = |col: &str| match col {
        "updated_at" => Some(t.updated_at),
        "entered_at" => Some(t.entered_at),
        _ => t.closed_at,
    };
    let ranges_ok = f.ranges.iter().all(|(col, from, at)| match updated(col) {
        Some(v) if *from => v >= *at,
        Some(v) => v <= *at,
        None => false,
    });
    let ids_ok = f.ids.iter().all(|(name, u)| {
        row.get(*name)
            .and_then(Value::as_str)
            .is_some_and(|s| s == u.to_string())
    });
    text_ok
        && ranges_ok
        && ids_ok
        && (!f.is_open || !t.is_closed)
        && (!f.is_closed || t.is_closed)
        && f.has_assignment
            .is_none_or(|h| h == t.assigned_to.is_some())
        && f.status_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&t.status_id))
}

/// Postgres ordering of two column values: nulls sort after everything in ascending order.
fn cmp_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let rank = |v: Option<&Value>| matches!(v, None | Some(Value::Null));
    match (rank(a), rank(b)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => match (a, b) {
            (Some(Value::Number(x)), Some(Value::Number(y))) => x
                .as_f64()
                .partial_cmp(&y.as_f64())
                .unwrap_or(Ordering::Equal),
            (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
            (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
            _ => Ordering::Equal,
        },
    }
}

/// Validated list options.
struct ListOptions {
    page: usize,
    limit: usize,
    sort: String,
    desc: bool,
    fields: Option<Vec<String>>,
    filters: Filters,
}

fn list_options(pairs: Vec<(String, String)>) -> Result<ListOptions, ApiError> {
    let mut p = Params::new(pairs);
    let page = p.int("page", 1, i64::MAX).unwrap_or(1) as usize;
    let limit = p.int("limit", 1, 100).unwrap_or(25) as usize;
    let sort = p.string("sort").unwrap_or_else(|| "created_at".into());
    let desc = p
        .choice("order", &["asc", "desc"])
        .is_none_or(|o| o == "desc");
    let filters = parse_filters(&mut p);
    if !p.issues.is_empty() {
        return Err(ApiError::issues("Query validation failed", p.issues));
    }
    let fields = match p.list("fields") {
        None => None,
        Some(list) => Some(expand_fields(list)?),
    };
    Ok(ListOptions {
        page,
        limit,
        sort,
        desc,
        fields,
        filters,
    })
}

fn expand_fields(list: Vec<String>) -> Result<Vec<String>, ApiError> {
    let unknown: Vec<&str> = list
        .iter()
        .map(String::as_str)
        .filter(|f| *f != "mobile_list" && !LIST_FIELDS.contains(f))
        .collect();
    if !unknown.is_empty() {
        let msg = format!("Unknown fields requested: {}", unknown.join(", "));
        return Err(ApiError::bad(&msg));
    }
    let mut out: Vec<String> = Vec::new();
    for f in &list {
        let names: Vec<&str> = if f == "mobile_list" {
            LIST_FIELDS.to_vec()
        } else {
            vec![f.as_str()]
        };
        for n in names {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        }
    }
    Ok(out)
}

/// `GET /api/v1/tickets`.
pub(crate) async fn list(State(st): State<Shared>, headers: HeaderMap, q: Pairs) -> Response {
    finish(list_inner(&st, &headers, pairs(q)))
}

fn list_inner(
    st: &Shared,
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    let caller = authenticate(st, headers)?;
    let rate = take_token(st, &caller)?;
    let o = list_options(pairs)?;
    let mut rows = matching_rows(st, &o)?;
    rows.sort_by(|a, b| {
        let ord = cmp_values(Some(&a.0), Some(&b.0));
        if o.desc {
            ord.reverse()
        } else {
            ord
        }
    });
    let total = rows.len();
    let total_pages = total.div_ceil(o.limit);
    let data: Vec<Value> = rows
        .into_iter()
        .skip((o.page - 1).saturating_mul(o.limit))
        .take(o.limit)
        .map(|(_, r)| Value::Object(r))
        .collect();
    let body = json!({
        "data": data,
        "pagination": {"page": o.page, "limit": o.limit, "total": total,
            "totalPages": total_pages, "hasNext": o.page < total_pages, "hasPrev": o.page > 1},
        "meta": {"sort": o.sort, "order": if o.desc { "desc" } else { "asc" },
            "filters": o.filters.echo},
    });
    Ok(respond(StatusCode::OK, body, Some(rate)))
}

/// A list row with the value it sorts on.
type SortedRow = (Value, Map<String, Value>);

/// The rows passing the filters, each with its sort value; 500 for an unknown sort column.
fn matching_rows(st: &Shared, o: &ListOptions) -> Result<Vec<SortedRow>, ApiError> {
    let column = if o.sort == "created_at" {
        "entered_at"
    } else {
        o.sort.as_str()
    };
    let store = st.store();
    let known = store
        .tickets()
        .first()
        .is_none_or(|t| t.row(st.tenant).contains_key(column));
    if !known {
        return Err(ApiError::InternalConfiguration(format!(
            "column tickets.{column} does not exist"
        )));
    }
    let rows = store
        .tickets()
        .iter()
        .filter_map(|t| {
            let row = t.row(st.tenant);
            if !matches(t, &row, &o.filters) {
                return None;
            }
            let key = row.get(column).cloned().unwrap_or(Value::Null);
            let row = match &o.fields {
                Some(f) => t.row_with_fields(st.tenant, f),
                None => row,
            };
            Some((key, row))
        })
        .collect();
    Ok(rows)
}

/// `GET /api/v1/tickets/{id}`.
pub(crate) async fn get_one(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    finish((|| {
        let caller = authenticate(&st, &headers)?;
        let rate = take_token(&st, &caller)?;
        let t = find_ticket(&st, ticket_id(&id)?)?;
        let mut row = t.row(st.tenant);
        let documents: Vec<Value> = st
            .store()
            .documents(t.ticket_id)
            .iter()
            .map(|d| d.listed_json(st.tenant))
            .collect();
        for k in [
            "location_name",
            "client_email",
            "client_phone",
            "contact_email",
            "contact_phone",
            "contact_avatar_url",
            "client_logo_url",
        ] {
            row.insert(k.into(), Value::Null);
        }
        row.insert("description_html".into(), json!(""));
        row.insert("documents".into(), Value::Array(documents));
        Ok(respond(
            StatusCode::OK,
            json!({"data": Value::Object(row)}),
            Some(rate),
        ))
    })())
}

/// Validated search options.
struct SearchOptions {
    query: String,
    fields: Vec<String>,
    include_closed: bool,
    limit: usize,
    status_ids: Option<Vec<Uuid>>,
}

fn search_options(pairs: Vec<(String, String)>) -> Result<SearchOptions, ApiError> {
    let mut p = Params::new(pairs);
    let query = p.string("query").filter(|s| !s.is_empty());
    if query.is_none() {
        let issue = match p.raw("query") {
            None => json!({"code": "invalid_type", "expected": "string",
                "received": "undefined", "path": ["query"], "message": "Required"}),
            Some(_) => json!({"code": "too_small", "minimum": 1, "type": "string",
                "inclusive": true, "exact": false, "path": ["query"],
                "message": "String must contain at least 1 character(s)"}),
        };
        p.issues.push(issue);
    }
    let allowed = ["title", "ticket_number", "client_name", "contact_name"];
    let fields = p
        .list("fields")
        .unwrap_or_else(|| vec!["title".into(), "ticket_number".into()]);
    for f in &fields {
        if !allowed.contains(&f.as_str()) {
            p.issues.push(json!({"received": f, "code": "invalid_enum_value",
                "options": allowed, "path": ["fields"],
                "message": format!("Invalid enum value. Expected 'title' | 'ticket_number' | 'client_name' | 'contact_name', received '{f}'")}));
        }
    }
    let include_closed = p.boolean("include_closed").unwrap_or(false);
    let limit = p.int("limit", 1, 100).unwrap_or(25) as usize;
    let status_ids = p.uuid_list("status_ids");
    if !p.issues.is_empty() {
        return Err(ApiError::issues("Query validation failed", p.issues));
    }
    Ok(SearchOptions {
        query: query.unwrap_or_default(),
        fields,
        include_closed,
        limit,
        status_ids,
    })
}

fn search_hit(t: &Ticket, o: &SearchOptions) -> bool {
    let status_ok = o
        .status_ids
        .as_ref()
        .is_none_or(|ids| ids.contains(&t.status_id));
    let text_ok = o.fields.iter().any(|f| match f.as_str() {
        "title" => ilike_contains(&t.title, &o.query),
        "ticket_number" => ilike_contains(&t.ticket_number, &o.query),
        "client_name" => ilike_contains(&t.client_name, &o.query),
        _ => false,
    });
    (o.include_closed || !t.is_closed) && status_ok && text_ok
}

/// `GET /api/v1/tickets/search`.
pub(crate) async fn search(State(st): State<Shared>, headers: HeaderMap, q: Pairs) -> Response {
    finish((|| {
        authenticate(&st, &headers)?;
        let o = search_options(pairs(q))?;
        let store = st.store();
        let mut hits: Vec<&Ticket> = store
            .tickets()
            .iter()
            .filter(|t| search_hit(t, &o))
            .collect();
        hits.sort_by_key(|t| std::cmp::Reverse(t.entered_at));
        let data: Vec<Value> = hits
            .into_iter()
            .take(o.limit)
            .map(|t| Value::Object(t.row(st.tenant)))
            .collect();
        Ok(respond(StatusCode::OK, json!({ "data": data }), None))
    })())
}
