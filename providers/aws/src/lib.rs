//! AWS provider: EC2 instance pools, Route 53 failover records and S3 state.

pub mod client;

pub use client::{s3_client, sdk_config};
