//! Asana client errors and their classification into [`ProviderError`].

use std::time::Duration;

use ordonis_core::provider_http;
use ordonis_core::{ErrorSource, ProviderError};

/// What a call to Asana's REST API can fail with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AsanaError {
    /// 429: wait `retry_after` (Asana's request-rate, concurrency and cost limiters all answer
    /// this way).
    #[error("Asana rate limit, retry after {retry_after:?}")]
    RateLimited {
        /// From `Retry-After` (60 s when absent).
        retry_after: Duration,
    },
    /// 401: the token is wrong, expired or revoked.
    #[error("Asana refused the token (401): {message}")]
    Unauthorized {
        /// Asana's message.
        message: String,
    },
    /// 403: the token lacks access to the object (or the scope for the operation).
    #[error("Asana refused access to {what} (403): {message}")]
    Forbidden {
        /// What was asked for.
        what: String,
        /// Asana's message.
        message: String,
    },
    /// 404: the object does not exist (or was deleted).
    #[error("Asana has no {what}")]
    NotFound {
        /// What was asked for.
        what: String,
        /// Asana's `errors[].message`, joined (not in the display: it says little more).
        message: String,
    },
    /// 412 from `GET /events`: the sync token is too old. Re-crawl the resource, then continue
    /// with the fresh token Asana sent.
    #[error("Asana event sync token expired; re-crawl and continue with the new token")]
    SyncTokenExpired {
        /// The fresh sync token from the 412 body, when present.
        sync: Option<String>,
    },
    /// 5xx (or 408): temporary.
    #[error("Asana server error {status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Asana's message.
        message: String,
    },
    /// Any other 4xx: the request was refused (an invalid value, an unknown enum option).
    #[error("Asana rejected the request ({status}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Asana's `errors[].message`, joined.
        message: String,
    },
    /// 3xx: the API answered with a redirect. Redirects are not followed (the request, its
    /// token and body would go elsewhere); check the integration's `base_url`.
    #[error(
        "Asana answered {status} redirecting to {location}; redirects are not followed (check the base URL)"
    )]
    Redirected {
        /// HTTP status.
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// Connection refused, DNS failure, timeout.
    #[error("cannot reach Asana: {message}")]
    Transport {
        /// What failed.
        message: String,
        /// The HTTP client's error, when there is one.
        source: Option<ErrorSource>,
    },
    /// A response body that is not what the API documents.
    #[error("unexpected Asana response: {0}")]
    Decode(String),
    /// An answer larger than the client's cap on provider answers: reading stopped at the
    /// cap. Not retried (the same object would be as large again); raise the cap
    /// (`with_max_response_bytes`, the server's `--max-provider-response-bytes`) if it is
    /// real.
    #[error("Asana's answer is too large: over the {limit}-byte limit on provider answers")]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The integration is misconfigured (no token, a bad base URL, a bad gid, bad options).
    #[error("Asana integration misconfigured: {0}")]
    Config(String),
}

impl AsanaError {
    /// True for failures worth retrying later (rate limits included).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Server { .. } | Self::Transport { .. }
        )
    }
}

impl From<AsanaError> for ProviderError {
    fn from(e: AsanaError) -> Self {
        let msg = e.to_string();
        match e {
            AsanaError::RateLimited { retry_after } => {
                ProviderError::rate_limited_for(retry_after, "retry-after")
            }
            AsanaError::Unauthorized { .. }
            | AsanaError::Forbidden { .. }
            | AsanaError::Rejected { .. }
            | AsanaError::Redirected { .. }
            | AsanaError::SyncTokenExpired { .. }
            | AsanaError::Config(_) => ProviderError::Terminal(msg),
            AsanaError::NotFound { .. } => ProviderError::NotFound(msg),
            AsanaError::Server { .. } => ProviderError::retryable(msg),
            AsanaError::Transport { source, .. } => ProviderError::Retryable {
                message: msg,
                source,
            },
            AsanaError::Decode(_) | AsanaError::TooLarge { .. } => ProviderError::BadInput(msg),
        }
    }
}

impl From<provider_http::ReadError> for AsanaError {
    fn from(e: provider_http::ReadError) -> Self {
        match e {
            provider_http::ReadError::TooLarge { limit } => AsanaError::TooLarge { limit },
            provider_http::ReadError::Transport(e) => e.into(),
        }
    }
}

impl From<reqwest::Error> for AsanaError {
    fn from(e: reqwest::Error) -> Self {
        // The URL can carry query values; reqwest's message does not include credentials.
        if e.is_decode() {
            AsanaError::Decode(e.without_url().to_string())
        } else if e.is_builder() {
            AsanaError::Config(e.without_url().to_string())
        } else {
            let e = e.without_url();
            AsanaError::Transport {
                message: e.to_string(),
                source: Some(ErrorSource::new(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let rl: ProviderError = AsanaError::RateLimited {
            retry_after: Duration::from_secs(5),
        }
        .into();
        assert!(rl.rate_limited_until().is_some());
        assert!(matches!(
            ProviderError::from(AsanaError::Unauthorized {
                message: String::new()
            }),
            ProviderError::Terminal(_)
        ));
        assert!(matches!(
            ProviderError::from(AsanaError::Forbidden {
                what: "task 1".into(),
                message: String::new()
            }),
            ProviderError::Terminal(_)
        ));
        assert!(matches!(
            ProviderError::from(AsanaError::Server {
                status: 503,
                message: String::new()
            }),
            ProviderError::Retryable { .. }
        ));
        assert!(matches!(
            ProviderError::from(AsanaError::Transport {
                message: "timeout".into(),
                source: None
            }),
            ProviderError::Retryable { .. }
        ));
        assert!(matches!(
            ProviderError::from(AsanaError::NotFound {
                what: "x".into(),
                message: String::new()
            }),
            ProviderError::NotFound(_)
        ));
        assert!(matches!(
            ProviderError::from(AsanaError::Decode("x".into())),
            ProviderError::BadInput(_)
        ));
        assert!(matches!(
            ProviderError::from(AsanaError::SyncTokenExpired { sync: None }),
            ProviderError::Terminal(_)
        ));
        assert!(
            AsanaError::Transport {
                message: String::new(),
                source: None
            }
            .is_retryable()
        );
        assert!(!AsanaError::Config(String::new()).is_retryable());
    }
}
