//! Jira client errors and their classification into [`ProviderError`].

use std::time::Duration;

use ordonis_core::provider_http;
use ordonis_core::{ErrorSource, ProviderError};

/// `RateLimit-Reason` of Jira's per-issue write limit (20 writes in 2 s, 100 in 30 s).
pub const PER_ISSUE_ON_WRITE: &str = "jira-per-issue-on-write";

/// What a call to Jira's REST API can fail with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JiraError {
    /// 429 (or 503 with `Retry-After`): wait `retry_after`. With the reason
    /// [`PER_ISSUE_ON_WRITE`] only that issue waits.
    #[error("Jira rate limit ({reason}), retry after {retry_after:?}")]
    RateLimited {
        /// From `Retry-After` (60 s when absent).
        retry_after: Duration,
        /// `RateLimit-Reason` (`jira-burst-based`, `jira-per-issue-on-write`, ...) or
        /// `retry-after`.
        reason: String,
        /// The call's kind ([`call_kind`](crate::budget::call_kind): method and endpoint),
        /// which a burst limit holds back.
        call: String,
    },
    /// 401 or 403: the credentials are wrong or lack a permission.
    #[error("Jira refused the credentials ({status}): {message}")]
    Unauthorized {
        /// HTTP status.
        status: u16,
        /// Jira's message, or ours.
        message: String,
    },
    /// 404: the issue does not exist or is not visible to the account.
    #[error("Jira has no {what} (or the account cannot see it)")]
    NotFound {
        /// What was asked for.
        what: String,
    },
    /// 5xx, 408, 409 or 425: temporary.
    #[error("Jira server error {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Jira's message.
        message: String,
    },
    /// Any other 4xx: the request was refused (a field not on the screen, an unknown option).
    #[error("Jira rejected the request ({status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Jira's `errorMessages` and `errors`, joined.
        message: String,
        /// Jira's `errors` object: field id → why that field was refused. An edit whose
        /// refusal names fields is re-sent without them.
        field_errors: std::collections::BTreeMap<String, String>,
    },
    /// 3xx: the site answered with a redirect. Redirects are not followed (the request, its
    /// credentials and body would go elsewhere); check the integration's `base_url`.
    #[error(
        "Jira answered {status} redirecting to {location}; redirects are not followed (check the base URL)"
    )]
    Redirected {
        /// HTTP status.
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// Connection refused, DNS failure, timeout.
    #[error("cannot reach Jira: {message}")]
    Transport {
        /// What failed.
        message: String,
        /// The HTTP client's error, when there is one.
        source: Option<ErrorSource>,
    },
    /// A response body that is not what the API documents.
    #[error("unexpected Jira response: {0}")]
    Decode(String),
    /// An answer larger than the client's cap on provider answers: reading stopped at the
    /// cap. Not retried (the same object would be as large again); raise the cap
    /// (`with_max_response_bytes`, the server's `--max-provider-response-bytes`) if it is
    /// real.
    #[error("Jira's answer is too large: over the {limit}-byte limit on provider answers")]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The integration is misconfigured (no API credentials, a bad base URL, a bad id).
    #[error("Jira integration misconfigured: {0}")]
    Config(String),
}

impl From<JiraError> for ProviderError {
    fn from(e: JiraError) -> Self {
        let msg = e.to_string();
        match e {
            // The per-issue write limit holds back writes to this issue only.
            JiraError::RateLimited {
                retry_after,
                reason,
                ..
            } if reason == PER_ISSUE_ON_WRITE => ProviderError::ObjectBusy {
                until: time::OffsetDateTime::now_utc() + retry_after,
                reason,
            },
            // The burst limit holds back this endpoint and method only.
            JiraError::RateLimited {
                retry_after,
                reason,
                call,
            } if reason == crate::budget::BURST_BASED => ProviderError::KindLimited {
                kind: call,
                until: time::OffsetDateTime::now_utc() + retry_after,
                reason,
            },
            JiraError::RateLimited {
                retry_after,
                reason,
                ..
            } => ProviderError::rate_limited_for(retry_after, reason),
            JiraError::Unauthorized { .. }
            | JiraError::Rejected { .. }
            | JiraError::Redirected { .. }
            | JiraError::Config(_) => ProviderError::Terminal(msg),
            JiraError::NotFound { .. } => ProviderError::NotFound(msg),
            JiraError::Server { .. } => ProviderError::retryable(msg),
            JiraError::Transport { source, .. } => ProviderError::Retryable {
                message: msg,
                source,
            },
            JiraError::Decode(_) | JiraError::TooLarge { .. } => ProviderError::BadInput(msg),
        }
    }
}

impl From<provider_http::ReadError> for JiraError {
    fn from(e: provider_http::ReadError) -> Self {
        match e {
            provider_http::ReadError::TooLarge { limit } => JiraError::TooLarge { limit },
            provider_http::ReadError::Transport(e) => e.into(),
        }
    }
}

impl From<reqwest::Error> for JiraError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_decode() {
            JiraError::Decode(e.to_string())
        } else if e.is_builder() {
            JiraError::Config(e.to_string())
        } else {
            JiraError::Transport {
                message: e.to_string(),
                source: Some(ErrorSource::new(e)),
            }
        }
    }
}
