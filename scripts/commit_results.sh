#!/usr/bin/env bash
# Export every finished run of the long sweeps into results/ and commit the new or changed result
# folders, so a sweep loses nothing finished when the machine goes away:
#   outputs/table2      -> results/table2       (<dataset>/<model>-<loss>/seed<seed>)
#   outputs/leaderboard -> results/leaderboard  (the sweep's own layout: one folder per configuration)
#   scripts/commit_results.sh                                     # once
#   while sleep 300; do scripts/commit_results.sh; done           # beside a sweep
# What is committed is whatever git sees new or changed below results/table2 and results/leaderboard
# (also a folder exported by an earlier call that stopped before its commit), and nothing else
# (`git commit --only`): other staged work stays staged. The generated blocks of docs/results.md and
# README.md are rebuilt in the same commit (`make pages`), so every commit's pages match its results
# (tests/test_results.py); a page with edits of its own is left alone and named.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PAGES=(docs/results.md README.md)
ROOTS=(results/table2 results/leaderboard)
export_into() {  # RUNS INTO [--keep-layout]
  [ -d "$1" ] || return 0
  local out
  out=$("$PY" -m seqrec.report.export "$1" --into "$2" "${@:3}" 2>&1) || {
    case $out in *"No finished run"*) return 0 ;; esac  # a sweep whose first run is still going
    echo "$out" >&2
    return 1
  }
}
export_into outputs/table2 results/table2
export_into outputs/leaderboard results/leaderboard --keep-layout
# result folders (<root>/<dataset>/<configuration>/seed<seed>) with a new or changed file
mapfile -t folders < <(git status --porcelain --untracked-files=all -- "${ROOTS[@]}" |
  sed -E 's/^.. //; s#/[^/]+$##' | grep -E '/seed[0-9]+$' | sort -u)
[ ${#folders[@]} -gt 0 ] || exit 0
git add -- "${folders[@]}"
paths=("${folders[@]}")
if git diff --quiet HEAD -- "${PAGES[@]}"; then
  "$PY" -m seqrec.report --runs results/table2 --beyond results/leaderboard --page docs/results.md \
    --page README.md --pages-only >/dev/null
  paths+=("${PAGES[@]}")
else
  echo "commit_results: ${PAGES[*]} have uncommitted edits; rebuild their generated blocks with make pages" >&2
fi
message="results: $(printf '%s\n' "${folders[@]#results/}" | paste -sd ' ' -)"
for try in 1 2 3 4 5; do  # another git command may hold the index lock for a moment
  if git commit --quiet --only -m "$message" -- "${paths[@]}"; then break; fi
  sleep 3
done
