//! Webhook notifications (`--notify URL`): one JSON POST with a Slack-compatible `text`.

/// Why a notification did not arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyError {
    /// The request could not be made or got no answer (within 10 s).
    Send(String),
    /// The webhook answered with a status other than 2xx.
    Status(u16),
}

impl std::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotifyError::Send(why) => write!(f, "{why}"),
            NotifyError::Status(code) => write!(f, "the webhook answered {code}"),
        }
    }
}

impl std::error::Error for NotifyError {}

/// Posts `body` as JSON to `url`, within 10 s.
pub fn post(url: &str, body: &impl serde::Serialize) -> Result<(), NotifyError> {
    let runtime = crate::runtime::shared().map_err(|d| NotifyError::Send(d.message))?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| NotifyError::Send(e.to_string()))?;
        let response = client.post(url).json(body).send().await.map_err(|e| NotifyError::Send(e.to_string()))?;
        match response.status() {
            s if s.is_success() => Ok(()),
            s => Err(NotifyError::Status(s.as_u16())),
        }
    })
}
