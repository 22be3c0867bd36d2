//! Shared by the gcplocal tests: the provider with a retry budget short enough for a test.

use std::time::Duration;

use drplan_core::config::Config;
use drplan_provider_gcp::{GcpProvider, Limits};

/// The provider for `config`, retrying for seconds rather than the policy's full budget.
pub async fn provider(config: &Config) -> GcpProvider {
    let limits = Limits {
        retry: drplan_retry::RetryPolicy {
            budget: Duration::from_secs(5),
            first_backoff: Duration::from_millis(100),
            ..drplan_retry::RetryPolicy::DEFAULT
        },
        operation_timeout: Duration::from_secs(10),
    };
    GcpProvider::with_limits(config, limits).await.expect("provider builds")
}
