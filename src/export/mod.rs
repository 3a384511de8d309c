//! export (placeholder).
