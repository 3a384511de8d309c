//! Placeholder signatures of the reqwest client (being built on the `api` branch).
#![allow(missing_docs, dead_code, unused_variables)]
use super::*;
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

pub struct ApiKey(String);
impl ApiKey {
    pub fn new(s: String) -> Self {
        ApiKey(s)
    }
}
pub struct ClientConfig {
    pub base_url: String,
    pub api_key: ApiKey,
    pub tenant: Option<String>,
    pub rate_per_minute: u32,
    pub burst: u32,
    pub request_timeout: Duration,
    pub create_timeout: Duration,
    pub pool_idle_timeout: Duration,
    pub user_agent: String,
}
impl ClientConfig {
    pub fn new(base_url: String, api_key: ApiKey) -> Self {
        ClientConfig {
            base_url,
            api_key,
            tenant: None,
            rate_per_minute: 60,
            burst: 120,
            request_timeout: Duration::from_secs(60),
            create_timeout: Duration::from_secs(120),
            pool_idle_timeout: Duration::from_secs(4),
            user_agent: String::new(),
        }
    }
}
#[derive(Clone)]
pub struct Client;
#[derive(Debug, Clone, Default)]
pub struct ClientStats {
    pub requests: u64,
    pub throttled: u64,
    pub retries: u64,
    pub waited_for_rate: Duration,
    pub last_wait_reason: Option<String>,
}
pub struct Downloaded {
    pub bytes: u64,
    pub sha256: String,
    pub content_type: Option<String>,
    pub file_name: Option<String>,
}
pub struct Uploaded {
    pub document: Document,
    pub bytes: u64,
    pub sha256: String,
}
fn nb<T>() -> Result<T, ApiError> {
    Err(ApiError::Local("not built".into()))
}
impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Client, ApiError> {
        nb()
    }
    pub fn base_url(&self) -> &str {
        ""
    }
    pub fn stats(&self) -> ClientStats {
        ClientStats::default()
    }
    pub fn note_retry(&self) {}
    pub fn wait_reason(&self) -> Option<(String, Duration)> {
        None
    }
    pub async fn list_tickets(&self, q: &TicketQuery) -> Result<TicketPage, ApiError> {
        nb()
    }
    pub async fn get_ticket(&self, id: Uuid) -> Result<Ticket, ApiError> {
        nb()
    }
    pub async fn list_comments(&self, t: Uuid, l: u32, o: u32) -> Result<Vec<Comment>, ApiError> {
        nb()
    }
    pub async fn create_comment(&self, t: Uuid, b: &NewComment) -> Result<Comment, ApiError> {
        nb()
    }
    pub async fn update_comment(&self, t: Uuid, c: Uuid, x: &str) -> Result<Comment, ApiError> {
        nb()
    }
    pub async fn list_documents(&self, t: Uuid) -> Result<Vec<Document>, ApiError> {
        nb()
    }
    pub async fn upload_document(
        &self,
        t: Uuid,
        p: &Path,
        n: &str,
        m: &str,
    ) -> Result<Uploaded, ApiError> {
        nb()
    }
    pub async fn download_document(
        &self,
        t: Uuid,
        d: Uuid,
        f: &mut tokio::fs::File,
    ) -> Result<Downloaded, ApiError> {
        nb()
    }
    pub async fn delete_document(&self, t: Uuid, d: Uuid) -> Result<(), ApiError> {
        nb()
    }
}
