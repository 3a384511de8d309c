//! Documents: list (newest first), download (streamed from disk, no Content-Length, no
//! rate-limit headers although a token is taken) and delete (`{"data": null}`, again: 404).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use tokio_util::io::ReaderStream;

use super::{
    authenticate, find_ticket, finish, require_update, respond, take_token, ticket_id,
    unchecked_id, Shared,
};
use crate::sandbox::error::ApiError;
use crate::sandbox::model::Document;

/// What JavaScript's `encodeURIComponent` leaves alone: `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// `encodeURIComponent(name)`.
pub(crate) fn encode_uri_component(name: &str) -> String {
    utf8_percent_encode(name, URI_COMPONENT).to_string()
}

/// `GET /api/v1/tickets/{id}/documents`.
pub(crate) async fn list(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    finish((|| {
        let caller = authenticate(&st, &headers)?;
        let rate = take_token(&st, &caller)?;
        let ticket = find_ticket(&st, ticket_id(&id)?)?;
        let data: Vec<Value> = st
            .store()
            .documents(ticket.ticket_id)
            .iter()
            .map(|d| d.listed_json(st.tenant))
            .collect();
        Ok(respond(StatusCode::OK, json!({ "data": data }), Some(rate)))
    })())
}

/// The document attached to the ticket in the path, after the shared checks.
fn checked_document(
    st: &Shared,
    headers: &HeaderMap,
    id: &str,
    document_id: &str,
    update: bool,
) -> Result<(Document, super::RateHeaders), ApiError> {
    let caller = authenticate(st, headers)?;
    let rate = take_token(st, &caller)?;
    if update {
        require_update(&caller)?;
    }
    let ticket = find_ticket(st, ticket_id(id)?)?;
    let doc_id = unchecked_id(document_id)?;
    let doc = st
        .store()
        .document(doc_id)
        .filter(|d| d.ticket_id == ticket.ticket_id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound("Document not found".to_string()))?;
    Ok((doc, rate))
}

/// `GET /api/v1/tickets/{id}/documents/{document_id}`: the raw bytes, streamed.
pub(crate) async fn download(
    State(st): State<Shared>,
    Path((id, document_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let doc = match checked_document(&st, &headers, &id, &document_id, false) {
        Ok((doc, _)) => doc,
        Err(e) => return e.into_response(),
    };
    let path = st.store().file_path(doc.file_id);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            return ApiError::Internal(format!("Failed to download file: {e}")).into_response()
        }
    };
    let body = Body::from_stream(ReaderStream::with_capacity(file, 256 * 1024));
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    let mime = HeaderValue::from_str(&doc.mime_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_TYPE, mime);
    let disposition = format!(
        "attachment; filename=\"{}\"",
        encode_uri_component(&doc.document_name)
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `DELETE /api/v1/tickets/{id}/documents/{document_id}`.
pub(crate) async fn delete(
    State(st): State<Shared>,
    Path((id, document_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    finish((|| {
        let (doc, rate) = checked_document(&st, &headers, &id, &document_id, true)?;
        st.store()
            .delete_document(doc.document_id)
            .ok_or_else(|| ApiError::NotFound("Document not found".to_string()))?;
        Ok(respond(StatusCode::OK, json!({ "data": null }), Some(rate)))
    })())
}

#[cfg(test)]
mod tests {
    use super::encode_uri_component;

    #[test]
    fn encodes_like_javascript() {
        assert_eq!(
            encode_uri_component("my report (v2) é.pdf"),
            "my%20report%20(v2)%20%C3%A9.pdf"
        );
        assert_eq!(encode_uri_component("a-b_c.d!e~f*g'h"), "a-b_c.d!e~f*g'h");
        assert_eq!(encode_uri_component("x\"y/z%"), "x%22y%2Fz%25");
    }
}
