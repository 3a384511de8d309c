//! The base URL rule: parse once with `url::Url` (the parser reqwest itself uses), decide on the
//! parsed host, and hand the client the serialization of exactly that parse.
//!
//! Accepted without `--allow-http`: `https://` to any host, and `http://` to a loopback host:
//! - an IPv4 address in 127.0.0.0/8, in any form the URL standard reads as one (`127.1`,
//!   `0x7f.1`, `2130706433` are all 127.0.0.x, and are serialized as such);
//! - `[::1]`, or an IPv4-mapped loopback address (`[::ffff:127.0.0.1]`);
//! - the name `localhost` (any case). `localhost.` and `*.localhost` are refused: nothing
//!   guarantees that the resolver answers them from `/etc/hosts` rather than from DNS.
//!
//! Always refused: a user name or password (the API key belongs in `ALGA_API_KEY` or
//! `--api-key-file`, never in a URL), a query or fragment (paths are appended to the base URL), a
//! backslash (parsers disagree on it), and any scheme but `http` and `https`.

use url::{Host, Url};

use crate::error::{Error, Result};

/// A base URL that passed [`check_url`]; `as_str()` is what the client is built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(Url);

impl BaseUrl {
    /// The normalized URL without a trailing slash, e.g. `http://127.0.0.1:3000`.
    pub fn as_str(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }

    /// The parsed URL.
    pub fn url(&self) -> &Url {
        &self.0
    }
}

/// Refuse anything but `https://`, or `http://` to a loopback host (unless `allow_http`); see the
/// module documentation for the exact rule.
pub fn check_url(raw: &str, allow_http: bool) -> Result<BaseUrl> {
    let url = parse_base_url(raw)?;
    if url.scheme() == "https" || allow_http || is_loopback(&url) {
        return Ok(BaseUrl(url));
    }
    let host = url.host_str().unwrap_or_default();
    Err(Error::Usage(format!(
        "refusing plain http to {host}: the API key would travel unencrypted; use https:// or pass --allow-http"
    )))
}

/// The checks that do not depend on `--allow-http`: it parses, the scheme is http(s), it has a
/// host, and it holds no credentials, query, fragment or backslash. (Also used by `validate`.)
pub fn parse_base_url(raw: &str) -> Result<Url> {
    let shown = shown(raw);
    if raw.contains('\\') {
        return Err(Error::Usage(format!(
            "base url {shown} contains a backslash"
        )));
    }
    let url =
        Url::parse(raw).map_err(|e| Error::Usage(format!("base url {shown} is not a url: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Usage(format!(
            "base url {} contains a user name or password; the API key belongs in ALGA_API_KEY or --api-key-file",
            without_credentials(&url)
        )));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Usage(format!(
            "base url {shown} must start with https:// (or http:// for loopback)"
        )));
    }
    if url.host().is_none() {
        return Err(Error::Usage(format!("base url {shown} has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Usage(format!(
            "base url {shown} must not have a query or fragment (?…, #…): give the server's root"
        )));
    }
    Ok(url)
}

/// Whether the parsed host is loopback: 127.0.0.0/8, `::1`, `::ffff:127.x.y.z`, `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The raw URL for an error message, unless it may hold a secret (anything with `@`).
fn shown(raw: &str) -> String {
    if raw.contains('@') {
        "(not shown: it contains '@')".to_string()
    } else {
        format!("{raw:?}")
    }
}

/// The URL with its user name and password removed, quoted.
fn without_credentials(url: &Url) -> String {
    let mut clean = url.clone();
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    format!("{:?}", clean.as_str())
}

#[cfg(test)]
mod tests;
