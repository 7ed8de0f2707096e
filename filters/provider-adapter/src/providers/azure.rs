//! Azure OpenAI: OpenAI's JSON to `/openai/deployments/{deployment}/chat/completions?api-version=...`, the key
//! in `api-key`. Answers, streams and errors are OpenAI's (read by [`super::openai_compat`]).

use super::{encode_segment, openai_compat, Outgoing};
use crate::config::Settings;
use crate::errors::ApiError;
use crate::ir::Request;

/// Encodes for Azure OpenAI: the deployment is `azure.deployment`, or the mapped model.
pub fn encode(settings: &Settings, request: &Request) -> Result<Outgoing, ApiError> {
    let deployment = settings.azure.deployment.as_deref().unwrap_or(&request.model);
    Ok(Outgoing { path: path(settings, deployment), body: openai_compat::body(request) })
}

/// The path for `deployment`.
pub fn path(settings: &Settings, deployment: &str) -> String {
    format!(
        "{}/openai/deployments/{}/chat/completions?api-version={}",
        settings.prefix,
        encode_segment(deployment),
        encode_segment(&settings.azure.api_version)
    )
}
