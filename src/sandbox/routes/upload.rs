//! `POST /api/v1/tickets/{id}/documents`: the first multipart part named `file` is streamed to
//! disk. Reproduces undici's `formData()`: not multipart gives 500, a `filename*=` part gives 500,
//! a part without `filename` gives 400 `file is required`, a percent-encoded name is kept as sent.

use std::path::PathBuf;

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::json;
use tokio::io::{AsyncWriteExt, BufWriter};
use uuid::Uuid;

use super::{
    after_commit_fault, authenticate, find_ticket, finish, require_update, respond, take_token,
    ticket_id, RateHeaders, Shared,
};
use crate::sandbox::error::ApiError;
use crate::sandbox::model::Document;

/// The `filename` and whether a `filename*` parameter is present, from a part's
/// `Content-Disposition` value (quoted values may hold `;` and backslash escapes).
pub(crate) fn disposition_filename(value: &str) -> (Option<String>, bool) {
    let mut params: Vec<String> = Vec::new();
    let (mut cur, mut quoted, mut escaped) = (String::new(), false, false);
    for c in value.chars() {
        match c {
            _ if escaped => {
                cur.push(c);
                escaped = false;
            }
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => params.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    params.push(cur);
    let mut filename = None;
    let mut star = false;
    for p in params.iter().skip(1) {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "filename" if filename.is_none() => filename = Some(v.trim_start().to_string()),
            "filename*" => star = true,
            _ => {}
        }
    }
    (filename, star)
}

fn file_required() -> ApiError {
    ApiError::issues(
        "Validation failed",
        vec![json!({"path": ["file"], "message": "file is required"})],
    )
}

fn parse_failed() -> ApiError {
    ApiError::Internal("Failed to parse body as FormData.".to_string())
}

/// A file part written to disk.
struct Received {
    name: String,
    mime: String,
    size: u64,
}

/// Deletes the temporary file unless the upload was committed.
struct TempFile(PathBuf, bool);

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Reads every part; streams the first `file` part with a filename into `tmp`.
async fn receive(mut mp: Multipart, tmp: &TempFile, max: u64) -> Result<Received, ApiError> {
    let mut received: Option<Received> = None;
    let mut seen_file = false;
    while let Some(mut field) = mp.next_field().await.map_err(|_| parse_failed())? {
        let disposition = field
            .headers()
            .get(header::CONTENT_DISPOSITION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let (filename, star) = disposition_filename(&disposition);
        if star {
            return Err(parse_failed());
        }
        let is_first_file = field.name() == Some("file") && !seen_file;
        seen_file |= field.name() == Some("file");
        let Some(name) = filename.filter(|_| is_first_file) else {
            while field.chunk().await.map_err(|_| parse_failed())?.is_some() {}
            continue;
        };
        let mime = match field.headers().get(header::CONTENT_TYPE) {
            None => "text/plain".to_string(),
            Some(v) if v.is_empty() => "application/octet-stream".to_string(),
            Some(v) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
        };
        let size = store_part(&mut field, &tmp.0, max).await?;
        received = Some(Received { name, mime, size });
    }
    match received {
        Some(r) if r.size > max => Err(ApiError::Internal(format!(
            "Failed to upload file: File size {} exceeds the maximum of {max} bytes",
            r.size
        ))),
        Some(r) => Ok(r),
        None => Err(file_required()),
    }
}

/// Streams a part to `path` and returns its size. Past `max` bytes the rest is read and
/// discarded (so the client gets the 500 rather than a reset while still sending).
async fn store_part(
    field: &mut axum::extract::multipart::Field<'_>,
    path: &std::path::Path,
    max: u64,
) -> Result<u64, ApiError> {
    let io = |e: std::io::Error| ApiError::Internal(format!("Failed to upload file: {e}"));
    let file = tokio::fs::File::create(path).await.map_err(io)?;
    let mut out = Some(BufWriter::with_capacity(256 * 1024, file));
    let mut size = 0u64;
    while let Some(chunk) = field.chunk().await.map_err(|_| parse_failed())? {
        size += chunk.len() as u64;
        if size > max {
            out = None;
        }
        if let Some(w) = out.as_mut() {
            w.write_all(&chunk).await.map_err(io)?;
        }
    }
    if let Some(mut w) = out {
        w.flush().await.map_err(io)?;
    }
    Ok(size)
}

/// Checks the request's content type the way `formData()` does.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("application/x-www-form-urlencoded") {
        return Err(file_required());
    }
    if !ct.starts_with("multipart/form-data") {
        return Err(ApiError::Internal(
            "Content-Type was not one of \"multipart/form-data\" or \"application/x-www-form-urlencoded\"."
                .to_string(),
        ));
    }
    Ok(())
}

/// `POST /api/v1/tickets/{id}/documents`.
pub(crate) async fn upload(
    State(st): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    finish(upload_inner(st, id, headers, req).await)
}

async fn upload_inner(
    st: Shared,
    id: String,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers)?;
    let rate: RateHeaders = take_token(&st, &caller)?;
    require_update(&caller)?;
    let ticket = find_ticket(&st, ticket_id(&id)?)?.ticket_id;
    check_content_type(&headers)?;
    let mp = Multipart::from_request(req, &())
        .await
        .map_err(|_| parse_failed())?;
    let (file_id, tmp_path) = {
        let mut store = st.store();
        let file_id = store.new_id();
        let tmp = store
            .files_dir()
            .join(format!("upload-{}.part", Uuid::new_v4().simple()));
        (file_id, tmp)
    };
    let mut tmp = TempFile(tmp_path, false);
    let got = receive(mp, &tmp, st.max_upload_bytes).await?;
    let doc = {
        let mut store = st.store();
        let final_path = store.file_path(file_id);
        std::fs::rename(&tmp.0, &final_path)
            .map_err(|e| ApiError::Internal(format!("Failed to upload file: {e}")))?;
        tmp.1 = true;
        let doc = Document {
            document_id: store.new_id(),
            ticket_id: ticket,
            document_name: got.name,
            mime_type: got.mime,
            file_size: got.size,
            user_id: caller.user.user_id,
            author_name: caller.user.name.clone(),
            file_id,
            association_id: store.new_id(),
            updated_at: Utc::now(),
        };
        store.save_document(doc.clone());
        doc
    };
    if let Some(lost) = after_commit_fault(&st) {
        return Ok(lost);
    }
    let data = doc.created_json(st.tenant);
    Ok(respond(
        StatusCode::CREATED,
        json!({ "data": data }),
        Some(rate),
    ))
}

#[cfg(test)]
mod tests {
    use super::disposition_filename;

    #[test]
    fn reads_filename_and_flags_filename_star() {
        let (f, s) = disposition_filename(r#"form-data; name="file"; filename="a; b.txt""#);
        assert_eq!((f.as_deref(), s), (Some("a; b.txt"), false));
        let (f, s) =
            disposition_filename(r#"form-data; name="file"; filename*=utf-8''r%C3%A9.txt"#);
        assert_eq!((f, s), (None, true));
        let (f, _) = disposition_filename(r#"form-data; name="file"; filename="r%C3%A9.txt""#);
        assert_eq!(f.as_deref(), Some("r%C3%A9.txt"));
        let (f, _) = disposition_filename(r#"form-data; name="file""#);
        assert_eq!(f, None);
    }
}
