//! Console sign-ins as the store keeps them, so that every server of a deployment accepts a
//! sign-in made on any of them and a sign-out on one ends it on all.

use time::OffsetDateTime;

/// One console sign-in. Only digests are stored: the cookie's random id and the admin token
/// it was made under are never written anywhere, so a copy of the database hands out no
/// cookie and no token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    /// SHA-256 of the cookie's id.
    pub id_digest: [u8; 32],
    /// SHA-256 of the admin token the sign-in used: a sign-in from before a token change is
    /// refused.
    pub token_digest: [u8; 32],
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}
