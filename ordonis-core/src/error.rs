//! Errors. Each variant says what a caller can do about it: retry, wait until a time, give up,
//! or fix the input.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

/// The error underneath a classified one (a `sqlx` or `reqwest` error), kept as its
/// [`source`](std::error::Error::source) so a caller can walk the chain or downcast. Shared,
/// so the errors that hold it stay `Clone`; two are equal when they say the same.
#[derive(Clone)]
pub struct ErrorSource(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl ErrorSource {
    /// Keeps `e` as a source.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(e))
    }

    /// The underlying error, to downcast (`source.get().downcast_ref::<sqlx::Error>()`).
    pub fn get(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for ErrorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ErrorSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for ErrorSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for ErrorSource {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for ErrorSource {}

/// Bad input: which part and why. Never retried.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {why}")]
pub struct InvalidInput {
    /// The offending part.
    pub what: String,
    /// Why it is invalid.
    pub why: String,
}

impl InvalidInput {
    /// An invalid-input error.
    pub fn new(what: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            why: why.into(),
        }
    }
}

/// What a provider call or webhook check can fail with, classified for the engine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// A webhook failed verification (bad, missing or stale signature). Nothing is stored.
    #[error("webhook not authenticated: {0}")]
    Unauthenticated(String),
    /// Temporary: 5xx, timeout, connection error. Retry with backoff.
    #[error("temporary provider failure: {message}")]
    Retryable {
        /// What failed.
        message: String,
        /// The transport error underneath, when there is one.
        source: Option<ErrorSource>,
    },
    /// 429: wait until the given time before calling this integration again.
    #[error("rate limited until {until} ({reason})")]
    RateLimited {
        /// When calls may resume.
        until: OffsetDateTime,
        /// The provider's reason (Jira `RateLimit-Reason`), or "retry-after".
        reason: String,
    },
    /// A limit on one object (Jira's per-issue write limit): retry this job at `until`; the
    /// integration's other objects are not held back.
    #[error("object busy until {until} ({reason})")]
    ObjectBusy {
        /// When this object may be written again.
        until: OffsetDateTime,
        /// The provider's reason (`jira-per-issue-on-write`).
        reason: String,
    },
    /// A limit on one kind of call (Jira's burst limit, per endpoint and method): retry this
    /// job at `until`; the integration's other kinds of call go on, and the integration is
    /// not paused.
    #[error("{kind} calls limited until {until} ({reason})")]
    KindLimited {
        /// The kind of call held back (Jira: `POST /rest/api/3/search/jql`).
        kind: String,
        /// When calls of this kind may resume.
        until: OffsetDateTime,
        /// The provider's reason (`jira-burst-based`).
        reason: String,
    },
    /// Permanent: 401/403, a refused change, a misconfiguration. Retrying will not help.
    #[error("provider refused: {0}")]
    Terminal(String),
    /// The credentials may not read (or write) this object: a narrow token scope, an account
    /// removed from a private project. Not a deletion: the task is kept, the event fails with
    /// this reason, and the integration lists the object ([`crate::Engine::access_problems`])
    /// until a later fetch works. Its message starts with [`ProviderError::ACCESS_DENIED`].
    #[error("access denied: {0}")]
    Forbidden(String),
    /// The object does not exist (or is no longer visible).
    #[error("not found: {0}")]
    NotFound(String),
    /// The object exists but is outside the integration's scope (removed from the project in
    /// scope, a subtask the scope does not take): the engine stops syncing its task and
    /// records why; it syncs again once a fetch finds it back in scope.
    #[error("out of scope: {0}")]
    OutOfScope(String),
    /// A payload or response we cannot understand.
    #[error("bad input: {0}")]
    BadInput(String),
}

impl ProviderError {
    /// A temporary failure without an underlying error (a 5xx answer).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Retryable {
            message: message.into(),
            source: None,
        }
    }

    /// How a [`ProviderError::Forbidden`] message (and an event failed by one) begins.
    pub const ACCESS_DENIED: &'static str = "access denied: ";

    /// True for failures worth retrying later (including rate limits).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Retryable { .. }
                | Self::RateLimited { .. }
                | Self::ObjectBusy { .. }
                | Self::KindLimited { .. }
        )
    }

    /// Whether the failure is the pushed object's own (a comment, a link the provider refuses
    /// for good: too long, not allowed, its task gone) rather than the push job's (an outage,
    /// a rate limit, the credentials): recorded on the object, never retried.
    pub fn refuses_the_object(&self) -> bool {
        matches!(
            self,
            Self::Terminal(_)
                | Self::Forbidden(_)
                | Self::NotFound(_)
                | Self::OutOfScope(_)
                | Self::BadInput(_)
        )
    }

    /// The time calls may resume, for a rate limit (of the integration, or of the kind of
    /// call that failed).
    pub fn rate_limited_until(&self) -> Option<OffsetDateTime> {
        match self {
            Self::RateLimited { until, .. } | Self::KindLimited { until, .. } => Some(*until),
            _ => None,
        }
    }

    /// A rate limit that lasts `after` from now.
    pub fn rate_limited_for(after: Duration, reason: impl Into<String>) -> Self {
        Self::RateLimited {
            until: OffsetDateTime::now_utc() + after,
            reason: reason.into(),
        }
    }
}

/// A misconfigured integration (options or scope a provider cannot use): retrying will not
/// help until someone fixes it.
impl From<InvalidInput> for ProviderError {
    fn from(e: InvalidInput) -> Self {
        ProviderError::Terminal(e.to_string())
    }
}

/// What a store can fail with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A concurrent writer got there first (task revision moved, a mapping already exists).
    /// Re-read and recompute.
    #[error("concurrent modification: {0}")]
    Conflict(String),
    /// The lease on a claimed row expired or was taken over; the work must not be completed.
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// A row the call needs does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The database is unreachable or overloaded; retry later.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What failed.
        message: String,
        /// The database driver's error, when there is one.
        source: Option<ErrorSource>,
    },
    /// Input the store refuses (too large, violates a constraint).
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The database was written by a newer Ordonis: it has a migration applied that this
    /// build does not know. Nothing was written; run a release that knows it (or restore the
    /// backup taken before the upgrade).
    #[error(
        "the database was written by a newer Ordonis: it has migration {applied} applied, and \
         this binary knows migrations up to {known}. Nothing was changed. Run the Ordonis \
         release that wrote it (or a newer one), or restore the backup taken before upgrading"
    )]
    NewerSchema {
        /// The newest migration the database has that this build does not know.
        applied: i64,
        /// The newest migration this build knows.
        known: i64,
    },
    /// A migration the database has applied differs from this build's migration of the same
    /// number (its checksum): the binary and the database come from diverging builds.
    /// Nothing was written; run the build that migrated it.
    #[error(
        "the database's migration {version} is not this binary's migration {version} (their \
         checksums differ): it was migrated by another build of Ordonis. Nothing was changed. \
         Run the build that migrated it, or restore the backup taken before"
    )]
    MigrationChanged {
        /// The migration whose checksum differs.
        version: i64,
    },
    /// Anything else from the backend.
    #[error("store backend error: {message}")]
    Backend {
        /// What failed.
        message: String,
        /// The database driver's error, when there is one.
        source: Option<ErrorSource>,
    },
}

impl StoreError {
    /// The database is unavailable, without an underlying error.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    /// A backend failure, without an underlying error (a NULL column, a missing row).
    pub fn backend(message: impl Into<String>) -> Self {
        Self::Backend {
            message: message.into(),
            source: None,
        }
    }

    /// Keeps `e` as the source of an `Unavailable` or `Backend` error (the others are
    /// returned as they are: their message is the whole story).
    pub fn with_source(self, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        match self {
            Self::Unavailable { message, .. } => Self::Unavailable {
                message,
                source: Some(ErrorSource::new(e)),
            },
            Self::Backend { message, .. } => Self::Backend {
                message,
                source: Some(ErrorSource::new(e)),
            },
            other => other,
        }
    }

    /// True when retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Conflict(_) | Self::Unavailable { .. })
    }
}

impl Error {
    /// The kind a job's failure with this error is stored as.
    pub fn failure_kind(&self) -> crate::store::FailureKind {
        use crate::store::FailureKind as K;
        match self {
            Error::Provider(p) => match p {
                ProviderError::Forbidden(_) => K::AccessDenied,
                ProviderError::RateLimited { .. }
                | ProviderError::ObjectBusy { .. }
                | ProviderError::KindLimited { .. } => K::RateLimited,
                ProviderError::Retryable { .. } => K::Temporary,
                ProviderError::NotFound(_) | ProviderError::OutOfScope(_) => K::NotFound,
                ProviderError::Unauthenticated(_) | ProviderError::Terminal(_) => K::Refused,
                ProviderError::BadInput(_) => K::BadInput,
            },
            Error::Store(s) if s.is_retryable() => K::Temporary,
            Error::Store(StoreError::Invalid(_)) | Error::Invalid(_) => K::BadInput,
            Error::NotFound(_) => K::NotFound,
            Error::Conflict(_) => K::Refused,
            Error::Store(_) | Error::Secrets(_) | Error::UnknownProvider(_) => K::Other,
        }
    }
}

/// Errors of the engine's public API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad input from the caller.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// An unknown integration, task or event.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request conflicts with what is stored: a comment on a deleted task, an edit of a
    /// comment someone wrote in the provider. Not retryable as it stands.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A provider call failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// Secrets could not be sealed or opened (wrong key, corrupted ciphertext).
    #[error("secrets: {0}")]
    Secrets(String),
    /// No provider is registered for the integration's provider kind.
    #[error("no provider registered for {0}")]
    UnknownProvider(String),
}
