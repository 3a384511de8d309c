//! The S3 client, configured from the standard AWS environment through `object_store`'s
//! `AmazonS3Builder::from_env` (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ALLOW_HTTP`, ...), plus the
//! decisions `from_env` leaves open, made here in one pure function ([`Settings::decide`]):
//!
//! - the endpoint: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else `AWS_ENDPOINT` (both
//!   conventions are common; `from_env` alone would take whichever it met last);
//! - addressing: path-style (`https://host/bucket/key`) with a custom endpoint (MinIO, Ceph,
//!   R2, B2, Wasabi...: virtual-hosted names such as `bucket.localhost` do not resolve), and
//!   virtual-hosted (`https://bucket.s3.region.amazonaws.com/key`), what AWS recommends, without
//!   one; `AWS_VIRTUAL_HOSTED_STYLE_REQUEST` overrides both;
//! - a plain-http endpoint is refused up front unless `AWS_ALLOW_HTTP=true`;
//! - over https, request bodies are not hashed into the signature (`UNSIGNED-PAYLOAD`, as the
//!   AWS CLI and boto3 do): TLS already protects them, and hashing every byte a second time
//!   cost 0.65 s of CPU per GiB (BENCHMARKS.md); over plain http they are signed.
//!   `AWS_UNSIGNED_PAYLOAD` overrides;
//! - with a custom endpoint and no credentials in the environment the run stops before any
//!   request, instead of asking the EC2 instance-metadata address for some;
//! - request timeouts long enough for an 8 MiB part on a slow uplink (`AWS_TIMEOUT` wins).
//!
//! Nothing here prints or formats the builder: its `Debug` holds the secret key.

use crate::store::StoreError;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::ClientConfigKey;

/// Whole-request timeout (a part of [`super::upload::PART_BYTES`] at 100 KiB/s fits).
const TIMEOUT: &str = "300s";
/// Connection timeout.
const CONNECT_TIMEOUT: &str = "10s";

/// What the environment decides beyond `from_env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// The endpoint, when not AWS itself.
    pub(crate) endpoint: Option<String>,
    /// Virtual-hosted-style addressing (else path-style).
    pub(crate) virtual_hosted: bool,
    /// Leave request bodies out of the signature (`None`: as `AWS_UNSIGNED_PAYLOAD` says).
    pub(crate) unsigned_payload: Option<bool>,
}

impl Settings {
    /// Decide from the environment `var` (a lookup, so tests need not touch the process's).
    pub(crate) fn decide(var: impl Fn(&str) -> Option<String>) -> Result<Settings, StoreError> {
        let set = |k: &str| var(k).filter(|v| !v.trim().is_empty());
        let endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
            .into_iter()
            .find_map(set)
            .map(|e| e.trim().trim_end_matches('/').to_string());
        let truthy = |k: &str| set(k).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if let Some(e) = &endpoint {
            let lower = e.to_ascii_lowercase();
            if !lower.starts_with("https://") && !lower.starts_with("http://") {
                return Err(StoreError::Other(format!(
                    "AWS_ENDPOINT_URL {e:?} is not an http(s) URL (write https://host[:port])"
                )));
            }
            if lower.starts_with("http://") && !truthy("AWS_ALLOW_HTTP") {
                return Err(StoreError::Other(format!(
                    "the S3 endpoint {e} is plain http: set AWS_ALLOW_HTTP=true to use it \
                     (documents then travel unencrypted)"
                )));
            }
            let has_credentials = [
                "AWS_ACCESS_KEY_ID",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            ]
            .into_iter()
            .any(|k| set(k).is_some())
                || truthy("AWS_SKIP_SIGNATURE");
            if !has_credentials {
                return Err(StoreError::Other(format!(
                    "no S3 credentials for {e}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                )));
            }
        }
        let virtual_hosted = match set("AWS_VIRTUAL_HOSTED_STYLE_REQUEST") {
            Some(v) => v.trim().eq_ignore_ascii_case("true"),
            None => endpoint.is_none(),
        };
        let https = endpoint
            .as_deref()
            .is_none_or(|e| e.to_ascii_lowercase().starts_with("https://"));
        let unsigned_payload = (set("AWS_UNSIGNED_PAYLOAD").is_none() && https).then_some(true);
        Ok(Settings {
            endpoint,
            virtual_hosted,
            unsigned_payload,
        })
    }
}

/// The S3 client for `bucket`, from the process environment.
pub(crate) fn client(bucket: &str) -> Result<AmazonS3, StoreError> {
    let settings = Settings::decide(|k| std::env::var(k).ok())?;
    build(AmazonS3Builder::from_env(), bucket, &settings)
}

/// The S3 client for `bucket` from the variables `vars` instead of the process environment,
/// read as `from_env` reads it (each `AWS_*` name, lowercased, is a configuration key).
pub(crate) fn client_from(bucket: &str, vars: &[(String, String)]) -> Result<AmazonS3, StoreError> {
    let settings = Settings::decide(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))?;
    let mut b = AmazonS3Builder::new();
    for (name, value) in vars.iter().filter(|(n, _)| n.starts_with("AWS_")) {
        if let Ok(key) = name.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            b = b.with_config(key, value);
        }
    }
    build(b, bucket, &settings)
}

/// Apply the decisions and defaults, and build.
fn build(b: AmazonS3Builder, bucket: &str, settings: &Settings) -> Result<AmazonS3, StoreError> {
    let mut b = b
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(settings.virtual_hosted);
    if let Some(e) = &settings.endpoint {
        b = b.with_endpoint(e);
    }
    if let Some(unsigned) = settings.unsigned_payload {
        b = b.with_unsigned_payload(unsigned);
    }
    for (key, default) in [
        (ClientConfigKey::Timeout, TIMEOUT),
        (ClientConfigKey::ConnectTimeout, CONNECT_TIMEOUT),
    ] {
        let key = AmazonS3ConfigKey::Client(key);
        if b.get_config_value(&key).is_none() {
            b = b.with_config(key, default);
        }
    }
    // The builder's errors name settings, never their secret values.
    b.build()
        .map_err(|e| StoreError::Other(format!("cannot set up the S3 client for {bucket}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn decide(vars: &[(&str, &str)]) -> Result<Settings, StoreError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::decide(|k| map.get(k).cloned())
    }

    #[test]
    fn aws_itself_is_addressed_virtual_hosted_and_custom_endpoints_path_style() {
        let aws = decide(&[]).unwrap();
        assert_eq!(aws.endpoint, None);
        assert!(aws.virtual_hosted);
        assert_eq!(
            aws.unsigned_payload,
            Some(true),
            "https: TLS protects the bodies"
        );
        let minio = decide(&[
            ("AWS_ENDPOINT_URL", "https://minio.lan:9000/"),
            ("AWS_ACCESS_KEY_ID", "k"),
        ])
        .unwrap();
        assert_eq!(minio.endpoint.as_deref(), Some("https://minio.lan:9000"));
        assert!(!minio.virtual_hosted);
        let forced = decide(&[
            ("AWS_ENDPOINT", "https://s3.example.com"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "true"),
        ])
        .unwrap();
        assert!(forced.virtual_hosted);
    }

    #[test]
    fn both_endpoint_conventions_are_read_and_the_s3_specific_one_wins() {
        let both = decide(&[
            ("AWS_ENDPOINT", "https://old.example.com"),
            ("AWS_ENDPOINT_URL", "https://new.example.com"),
            ("AWS_ACCESS_KEY_ID", "k"),
        ])
        .unwrap();
        assert_eq!(both.endpoint.as_deref(), Some("https://new.example.com"));
        let s3 = decide(&[
            ("AWS_ENDPOINT_URL", "https://new.example.com"),
            ("AWS_ENDPOINT_URL_S3", "https://s3.example.com"),
            ("AWS_ACCESS_KEY_ID", "k"),
        ])
        .unwrap();
        assert_eq!(s3.endpoint.as_deref(), Some("https://s3.example.com"));
        let old = decide(&[
            ("AWS_ENDPOINT", "https://old.example.com"),
            ("AWS_ACCESS_KEY_ID", "k"),
        ]);
        assert_eq!(
            old.unwrap().endpoint.as_deref(),
            Some("https://old.example.com")
        );
    }

    #[test]
    fn plain_http_needs_allow_http_and_a_custom_endpoint_needs_credentials() {
        let e = decide(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_ACCESS_KEY_ID", "k"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("AWS_ALLOW_HTTP=true"), "{e}");
        let http = decide(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_ALLOW_HTTP", "TRUE"),
        ])
        .unwrap();
        assert_eq!(http.unsigned_payload, None, "plain http: bodies are signed");
        let chosen = decide(&[("AWS_UNSIGNED_PAYLOAD", "false")]).unwrap();
        assert_eq!(
            chosen.unsigned_payload, None,
            "left to AWS_UNSIGNED_PAYLOAD"
        );
        let e = decide(&[("AWS_ENDPOINT_URL", "https://minio.lan")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");
        assert!(decide(&[
            ("AWS_ENDPOINT_URL", "minio.lan:9000"),
            ("AWS_ACCESS_KEY_ID", "k")
        ])
        .is_err());
    }
}
