//! Builds Kubernetes clients from kubeconfig contexts.

use std::path::Path;
use std::sync::Once;

use kube::config::{KubeConfigOptions, Kubeconfig};

static CRYPTO_PROVIDER: Once = Once::new();

/// Installs aws-lc-rs as the process-wide rustls crypto provider.
///
/// Installed explicitly so that kube never depends on rustls picking a provider by itself
/// (it refuses when features enable more than one, and kube then panics on its first
/// request). Safe to call any number of times, from any thread.
pub fn install_crypto_provider() {
    CRYPTO_PROVIDER.call_once(|| {
        // Err only means a provider is already installed, which is all that is needed.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// A client for `context` of the kubeconfig at `kubeconfig`.
///
/// Without a path, the usual kubeconfig is used: `KUBECONFIG` (all its files
/// merged) or `~/.kube/config`.
pub async fn client_for_context(kubeconfig: Option<&Path>, context: &str) -> Result<kube::Client, kube::Error> {
    let config = config_for_context(kubeconfig, context).await?;
    kube::Client::try_from(config)
}

/// The client configuration of `context`, with the same kubeconfig lookup as
/// [`client_for_context`], for callers that adjust it (timeouts) before building a client.
pub async fn config_for_context(kubeconfig: Option<&Path>, context: &str) -> Result<kube::Config, kube::Error> {
    install_crypto_provider();
    let kubeconfig = match kubeconfig {
        Some(path) => Kubeconfig::read_from(path)?,
        None => Kubeconfig::read()?,
    };
    let options = KubeConfigOptions { context: Some(context.to_owned()), ..KubeConfigOptions::default() };
    Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?)
}
