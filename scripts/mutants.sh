#!/usr/bin/env bash
# Mutation testing of the modules that decide (not part of CI: a full run takes hours on two
# cores). Each group mutates its files with cargo-mutants and runs only the tests that guard
# them, so a mutant costs one incremental build and a short test run.
#
#   cargo install cargo-mutants --locked        # once
#   scripts/mutants.sh                          # every group
#   scripts/mutants.sh sync vera                # some groups
#   MUTANTS_ARGS="--shard 0/4" scripts/mutants.sh converters   # extra cargo-mutants flags
#
# Groups: sync policy vera sql converters webhooks. Results: mutants.out/<group>/
# (caught.txt, missed.txt, timeout.txt, unviable.txt); a summary line per group is printed
# at the end. Run it in a checkout of its own (a git worktree): it mutates the files in place
# so the build reuses that checkout's target directory, and restores each file after its
# mutant. Needs PostgreSQL? No: the SQL fences are tested on SQLite, the same SQL.
set -uo pipefail
cd "$(dirname "$0")/.."

command -v cargo-mutants >/dev/null || { echo "install cargo-mutants first: cargo install cargo-mutants --locked" >&2; exit 2; }

# group -> files to mutate | cargo test arguments that run the tests guarding them
declare -A FILES TESTS
FILES[sync]="ordonis-core/src/field_merge.rs ordonis-core/src/sync_state.rs"
TESTS[sync]="-p ordonis-core --lib -p ordonis-testkit --test properties --test engine"
FILES[policy]="ordonis-core/src/policy.rs"
TESTS[policy]="-p ordonis-core --lib -p ordonis-testkit --test properties --test engine"
FILES[vera]="ordonis-core/src/vera/merkle.rs ordonis-core/src/vera/encode.rs"
TESTS[vera]="-p ordonis-core --lib --test vera_encode --test vera_merkle --test vera_checkpoint"
FILES[sql]="ordonis-store-sql/src/commit.rs ordonis-store-sql/src/batch.rs"
TESTS[sql]="-p ordonis-store-sqlite --test suite"
FILES[converters]="ordonis-jira/src/rich_text/*.rs ordonis-asana/src/rich_text/*.rs ordonis-core/src/markdown.rs"
TESTS[converters]="-p ordonis-jira --lib --test rich_text -p ordonis-asana --test rich_text"
FILES[webhooks]="ordonis-jira/src/webhook.rs ordonis-asana/src/webhook.rs ordonis-core/src/provider_http.rs"
TESTS[webhooks]="-p ordonis-core -p ordonis-jira -p ordonis-asana --lib --test verify --test fixtures --test conformance --test engine_e2e"
ORDER="sync policy vera sql converters webhooks"

groups=("$@")
[ ${#groups[@]} -eq 0 ] && read -r -a groups <<< "$ORDER"
mkdir -p mutants.out
for g in "${groups[@]}"; do
  [ -n "${FILES[$g]:-}" ] || { echo "unknown group $g (groups: $ORDER)" >&2; exit 2; }
  args=(--in-place --no-shuffle --baseline skip --timeout 300 --profile mutants -o "mutants.out/$g")
  for f in ${FILES[$g]}; do args+=(--file "$f"); done
  # The group's test targets, for the build and the test run alike (cargo-mutants otherwise
  # builds every test target of the mutated package for each mutant).
  for a in ${TESTS[$g]}; do args+=("--cargo-arg=$a"); done
  # shellcheck disable=SC2086
  cargo mutants --workspace "${args[@]}" ${MUTANTS_ARGS:-} || true
done

echo
printf '%-11s %7s %7s %8s %9s %7s\n' group caught missed timeout unviable score
for g in "${groups[@]}"; do
  d="mutants.out/$g/mutants.out"
  c=$(wc -l < "$d/caught.txt" 2>/dev/null || echo 0)
  m=$(wc -l < "$d/missed.txt" 2>/dev/null || echo 0)
  t=$(wc -l < "$d/timeout.txt" 2>/dev/null || echo 0)
  u=$(wc -l < "$d/unviable.txt" 2>/dev/null || echo 0)
  tot=$((c + m + t))
  score=$([ "$tot" -gt 0 ] && echo "$(( (c + t) * 100 / tot ))%" || echo -)
  printf '%-11s %7s %7s %8s %9s %7s\n' "$g" "$c" "$m" "$t" "$u" "$score"
done
