#!/usr/bin/env bash
# Regenerates the upgrade fixtures (ordonis-server/tests/fixtures/upgrade/): a database
# written by a previous release's own ordonis-server, once on SQLite and once on PostgreSQL,
# each with the manifest of what that server said it held. The upgrade test
# (ordonis-server/tests/upgrade.rs) opens the committed files; it never rebuilds the release.
#
#   scripts/make-upgrade-fixture.sh [release tag, default v0.1.0]
#
# Needs: git, cargo, sqlite3, psql and pg_dump, and a PostgreSQL server at
# ORDONIS_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) whose user
# may create databases. CARGO_TARGET_DIR is honoured (share it to reuse built dependencies;
# see TESTING.md on sharing one between checkouts).
set -euo pipefail

release=${1:-v0.1.0}
root=$(git rev-parse --show-toplevel)
out="$root/ordonis-server/tests/fixtures/upgrade"
pg=${ORDONIS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
work=$(mktemp -d)
# An existing worktree of the release may be given (RELEASE_WORKTREE); else one is made.
wt=${RELEASE_WORKTREE:-$work/ordonis-$release}
db="ordonis_upgrade_fixture_$$"

cleanup() {
    psql -q "$pg" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    [ -n "${RELEASE_WORKTREE:-}" ] || git -C "$root" worktree remove --force "$wt" >/dev/null 2>&1 || true
    rm -f "${RELEASE_WORKTREE:-/nonexistent}/ordonis-server/examples/upgrade_fill.rs"
    rm -rf "$work"
}
trap cleanup EXIT

# The release's own server, and the filler compiled against the release's fakes.
[ -n "${RELEASE_WORKTREE:-}" ] || git -C "$root" worktree add --detach "$wt" "$release"
[ "$(git -C "$wt" rev-parse HEAD)" = "$(git -C "$root" rev-parse "$release^{commit}")" ] \
    || { echo "$wt is not at $release" >&2; exit 1; }
mkdir -p "$wt/ordonis-server/examples"
cp "$root/scripts/upgrade-fixture/fill.rs" "$wt/ordonis-server/examples/upgrade_fill.rs"
target=${CARGO_TARGET_DIR:-$wt/target}
(cd "$wt" && CARGO_TARGET_DIR="$target" cargo build -p ordonis-server --bin ordonis-server --example upgrade_fill)
mkdir -p "$work/bin" "$out"
cp "$target/debug/ordonis-server" "$target/debug/examples/upgrade_fill" "$work/bin/"

# SQLite: the file, compacted into one (no WAL beside it) of 1 KiB pages (a page per table
# and index at the default 4 KiB would make most of the file empty).
"$work/bin/upgrade_fill" "$work/bin/ordonis-server" "$work/ordonis.db" "$out/$release.sqlite.json"
rm -f "$out/$release.sqlite"
sqlite3 "$work/ordonis.db" "VACUUM INTO '$out/$release.sqlite'"
sqlite3 "$out/$release.sqlite" "PRAGMA page_size = 1024; VACUUM;"

# PostgreSQL: a plain-SQL dump with INSERTs (not COPY), so that a client executing SQL
# statements can restore it without psql.
psql -q "$pg" -c "CREATE DATABASE $db"
url="${pg%/*}/$db"
"$work/bin/upgrade_fill" "$work/bin/ordonis-server" "$url" "$out/$release.pg.json"
pg_dump --no-owner --no-privileges --inserts "$url" > "$out/$release.pg.sql"

ls -l "$out"
