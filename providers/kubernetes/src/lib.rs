//! Kubernetes provider: Deployments scaled across clusters.

pub mod client;

pub use client::{client_for_context, install_crypto_provider};
