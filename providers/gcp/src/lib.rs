//! GCP provider: Compute Engine instance pools.

pub mod client;

pub use client::instances_client;
