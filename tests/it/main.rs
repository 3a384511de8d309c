//! One integration-test binary built from topical modules; every test starts its own sandbox.

mod env;
mod import;
mod resume;
mod sandbox;
mod undo;
