//! One integration-test binary built from topical modules; every test starts its own server.

mod api;
mod backup;
mod docs;
mod env;
mod exactly_once;
mod failures;
mod import;
mod resume;
mod s3;
mod sandbox;
mod undo;
mod url_check;
