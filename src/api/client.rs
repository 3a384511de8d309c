//! Placeholder for the reqwest client.
#![allow(missing_docs, dead_code)]
pub struct ApiKey;
pub struct Client;
pub struct ClientConfig;
pub struct ClientStats;
pub struct Downloaded;
pub struct Uploaded;
