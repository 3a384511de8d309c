//! Connection settings shared by every command: base URL, API key, tenant, and the rule that
//! plain `http://` is only for loopback unless explicitly allowed (`base_url`).

mod base_url;

pub use base_url::{check_url, is_loopback, parse_base_url, BaseUrl};

use crate::api::{ApiKey, ClientConfig};
use crate::error::Result;

/// Where and how to connect.
pub struct Connection {
    /// Base URL (no trailing slash).
    pub base_url: String,
    /// The key (never printed).
    pub api_key: ApiKey,
    /// Sent as `x-tenant-id` when set.
    pub tenant: Option<String>,
    /// Allow plain http to a non-loopback host.
    pub allow_http: bool,
}

impl Connection {
    /// Check the URL; the client settings (the runner builds the client from them). The
    /// client gets the serialization of the URL that was checked, never the raw string.
    pub fn config(self, rate_per_minute: u32, burst: u32) -> Result<ClientConfig> {
        let checked = check_url(&self.base_url, self.allow_http)?;
        let mut cfg = ClientConfig::new(checked.as_str().to_string(), self.api_key);
        cfg.tenant = self.tenant;
        cfg.rate_per_minute = rate_per_minute;
        cfg.burst = burst;
        Ok(cfg)
    }
}
