#!/usr/bin/env bash
# Export every finished run of the long sweeps into results/ and commit the new or changed result
# folders, so a sweep loses nothing finished when the machine goes away:
#   outputs/table2      -> results/table2       (<dataset>/<model>-<loss>/seed<seed>)
#   outputs/leaderboard -> results/leaderboard  (the sweep's own layout: one folder per configuration)
#   scripts/commit_results.sh                                     # once
#   while sleep 300; do scripts/commit_results.sh; done           # beside a sweep
# Only the result folders and the pages built from them are committed (`git commit --only`): other
# staged work stays staged. The generated blocks of docs/results.md and README.md are rebuilt in the
# same commit (`make pages`), so every commit's pages match its results (tests/test_results.py); a
# page with edits of its own is left alone and named.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PAGES=(docs/results.md README.md)
written=()
export_into() {  # RUNS INTO [--keep-layout]
  [ -d "$1" ] || return 0
  while read -r state dest; do
    [ "$state" = wrote ] && written+=("$dest")
  done < <("$PY" -m seqrec.report.export "$1" --into "$2" "${@:3}")
}
export_into outputs/table2 results/table2
export_into outputs/leaderboard results/leaderboard --keep-layout
[ ${#written[@]} -gt 0 ] || exit 0
git add -- "${written[@]}"
paths=("${written[@]}")
if git diff --quiet HEAD -- "${PAGES[@]}"; then
  "$PY" -m seqrec.report --runs results/table2 --beyond results/leaderboard --page docs/results.md \
    --page README.md --pages-only >/dev/null
  paths+=("${PAGES[@]}")
else
  echo "commit_results: ${PAGES[*]} have uncommitted edits; rebuild their generated blocks with make pages" >&2
fi
message="results: $(printf '%s\n' "${written[@]#results/}" | paste -sd ' ' -)"
for try in 1 2 3 4 5; do  # another git command may hold the index lock for a moment
  if git commit --quiet --only -m "$message" -- "${paths[@]}"; then break; fi
  sleep 3
done
