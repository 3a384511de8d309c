//! exec (placeholder).
