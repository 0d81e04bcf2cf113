//! Refusing a database this build must not migrate: one written by a newer Ordonis (it has
//! a migration this build does not know) or by a diverging build (a migration of the same
//! number with another checksum).
//!
//! sqlx's migrator refuses both too, but with a bare `VersionMissing(n)` /
//! `VersionMismatch(n)`; the stores read the applied migrations first and call [`check`], so
//! the refusal says which versions and what to do, before the migrator takes a lock or
//! creates anything.

use ordonis_core::StoreError;

/// Checks the migrations a database has applied (`(version, checksum)`, in any order)
/// against the ones this build embeds: [`StoreError::NewerSchema`] names the newest unknown
/// one, else [`StoreError::MigrationChanged`] the first whose checksum differs.
pub fn check(known: &[(i64, &[u8])], applied: &[(i64, Vec<u8>)]) -> Result<(), StoreError> {
    let newest_unknown = applied
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| !known.iter().any(|(k, _)| k == v))
        .max();
    if let Some(applied) = newest_unknown {
        return Err(StoreError::NewerSchema {
            applied,
            known: newest_known(known),
        });
    }
    let mut changed: Vec<i64> = applied
        .iter()
        .filter(|(v, sum)| {
            known
                .iter()
                .any(|(k, ours)| k == v && *ours != sum.as_slice())
        })
        .map(|(v, _)| *v)
        .collect();
    changed.sort_unstable();
    match changed.first() {
        Some(&version) => Err(StoreError::MigrationChanged { version }),
        None => Ok(()),
    }
}

/// The newest migration this build embeds (0 when none).
pub fn newest_known(known: &[(i64, &[u8])]) -> i64 {
    known.iter().map(|(v, _)| *v).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: [(i64, &[u8]); 2] = [(1, b"a"), (2, b"b")];

    #[test]
    fn the_same_or_fewer_migrations_pass() {
        assert_eq!(check(&KNOWN, &[]), Ok(()));
        assert_eq!(check(&KNOWN, &[(1, b"a".to_vec())]), Ok(()));
        assert_eq!(
            check(&KNOWN, &[(2, b"b".to_vec()), (1, b"a".to_vec())]),
            Ok(())
        );
    }

    #[test]
    fn an_unknown_migration_names_the_newest_and_ours() {
        let applied = [
            (1, b"a".to_vec()),
            (9, b"x".to_vec()),
            (12, b"y".to_vec()),
            (2, b"other".to_vec()),
        ];
        assert_eq!(
            check(&KNOWN, &applied),
            Err(StoreError::NewerSchema {
                applied: 12,
                known: 2
            })
        );
    }

    #[test]
    fn a_changed_checksum_names_the_first_changed_migration() {
        let applied = [(2, b"B".to_vec()), (1, b"A".to_vec())];
        assert_eq!(
            check(&KNOWN, &applied),
            Err(StoreError::MigrationChanged { version: 1 })
        );
    }
}
