//! A faithful local Alga PSA ticket API (the only user of axum). Placeholder until built.
