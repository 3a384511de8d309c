//! One integration-test binary built from topical modules; every test starts its own server.

mod api;
mod backup;
mod docs;
mod env;
mod exactly_once;
mod failures;
mod hostile;
mod hostile_files;
mod import;
mod pacing;
mod props;
mod props_store;
mod restore;
mod resume;
mod s3;
mod sandbox;
mod shell;
mod soak;
mod unattended;
mod undo;
mod url_check;
