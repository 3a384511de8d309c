//! The sandbox against the contract: the acceptance flow, every status that applies, the
//! limiter's headers and 429s, persistence across a restart, and each fault.

mod acceptance;
mod capacity;
mod documents;
mod faults;
mod limiter;
mod statuses;
mod tickets;

use alga_batch::sandbox::{start, Sandbox, SandboxConfig};
use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;
use uuid::Uuid;

pub(crate) const KEY: &str = "sandbox-key";

/// A quiet sandbox with the defaults changed by `f`.
pub(crate) async fn sandbox_with(f: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
    let mut cfg = SandboxConfig {
        quiet: true,
        ..Default::default()
    };
    f(&mut cfg);
    start(cfg).await.expect("sandbox starts")
}

/// A quiet sandbox with default settings.
pub(crate) async fn sandbox() -> Sandbox {
    sandbox_with(|_| {}).await
}

/// A test client bound to one sandbox.
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) http: Client,
}

impl Api {
    pub(crate) fn new(sb: &Sandbox) -> Api {
        Api {
            base: sb.base_url(),
            http: Client::new(),
        }
    }

    pub(crate) fn get(&self, path: &str) -> RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .header("x-api-key", KEY)
    }

    pub(crate) fn post_json(&self, path: &str, body: &str) -> RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    pub(crate) fn upload(
        &self,
        ticket: Uuid,
        name: &str,
        mime: &str,
        bytes: &[u8],
    ) -> RequestBuilder {
        let part = reqwest::multipart::Part::bytes(bytes.to_vec())
            .file_name(name.to_string())
            .mime_str(mime)
            .unwrap();
        let form = reqwest::multipart::Form::new().part("file", part);
        self.http
            .post(format!("{}/api/v1/tickets/{ticket}/documents", self.base))
            .header("x-api-key", KEY)
            .multipart(form)
    }

    /// A multipart upload whose single part carries `disposition` verbatim.
    pub(crate) fn raw_upload(&self, ticket: Uuid, disposition: &str) -> RequestBuilder {
        let body = format!(
            "--XyZ\r\nContent-Disposition: {disposition}\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n"
        );
        self.http
            .post(format!("{}/api/v1/tickets/{ticket}/documents", self.base))
            .header("x-api-key", KEY)
            .header("content-type", "multipart/form-data; boundary=XyZ")
            .body(body)
    }
}

/// Status, headers and JSON body of a response.
pub(crate) async fn parts(r: Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

/// Sends and splits the response.
pub(crate) async fn call(rb: RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    parts(rb.send().await.unwrap()).await
}

/// The first open ticket of the seed data.
pub(crate) fn open_ticket(sb: &Sandbox) -> Uuid {
    sb.tickets()
        .iter()
        .find(|t| !t.is_closed)
        .unwrap()
        .ticket_id
}

/// The error code of an envelope.
pub(crate) fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

/// The error message of an envelope.
pub(crate) fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}
