//! Webhook notifications (`--notify URL`): one JSON POST with a Slack-compatible `text`.

/// Posts `body` as JSON to `url`, within 10 s.
pub fn post(url: &str, body: &impl serde::Serialize) -> Result<(), String> {
    let runtime = crate::runtime::shared().map_err(|d| d.message)?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let response = client.post(url).json(body).send().await.map_err(|e| e.to_string())?;
        if response.status().is_success() { Ok(()) } else { Err(format!("the webhook answered {}", response.status())) }
    })
}
