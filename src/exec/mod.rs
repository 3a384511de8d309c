//! exec (placeholder).
pub mod resolve;
pub mod retry;
