//! Integration tests: one binary built from topical modules.

mod api;
