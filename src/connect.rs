//! Connection settings shared by every command: base URL, API key, tenant, and the rule that
//! plain `http://` is only for loopback unless explicitly allowed.

use crate::api::{ApiKey, Client, ClientConfig};
use crate::error::{Error, Result};

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
    /// Check the URL and build a client with the given rate settings.
    pub fn client(self, rate_per_minute: u32, burst: u32) -> Result<Client> {
        build(self.config(rate_per_minute, burst)?)
    }

    /// Check the URL; the client settings, to adjust before [`build`].
    pub fn config(self, rate_per_minute: u32, burst: u32) -> Result<ClientConfig> {
        check_url(&self.base_url, self.allow_http)?;
        let mut cfg = ClientConfig::new(
            self.base_url.trim_end_matches('/').to_string(),
            self.api_key,
        );
        cfg.tenant = self.tenant;
        cfg.rate_per_minute = rate_per_minute;
        cfg.burst = burst;
        Ok(cfg)
    }
}

/// Build a client from [`Connection::config`].
pub fn build(cfg: ClientConfig) -> Result<Client> {
    Client::new(cfg).map_err(|e| Error::Fatal(format!("cannot build http client: {e}")))
}

/// Refuse anything but `https://`, or `http://` to a loopback host (unless allowed).
pub fn check_url(url: &str, allow_http: bool) -> Result<()> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = lower.strip_prefix("http://") else {
        return Err(Error::Usage(format!(
            "base url {url:?} must start with https:// (or http:// for loopback)"
        )));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    if loopback || allow_http {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "refusing plain http to {host}: the API key would travel unencrypted; use https:// or pass --allow-http"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn plain_http_only_for_loopback_unless_allowed() {
        assert!(check_url("https://psa.example.com", false).is_ok());
        assert!(check_url("http://127.0.0.1:3000", false).is_ok());
        assert!(check_url("http://localhost:3000/", false).is_ok());
        assert!(check_url("http://[::1]:8080", false).is_ok());
        assert!(check_url("http://psa.example.com", false).is_err());
        assert!(check_url("http://127.0.0.1.evil.com", false).is_err());
        assert!(check_url("http://psa.example.com", true).is_ok());
        assert!(check_url("ftp://x", true).is_err());
    }
}
