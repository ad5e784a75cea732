#!/usr/bin/env bash
# Export every finished run below RUNS into results/ and commit the new or changed result folders,
# so a long sweep loses nothing finished when the machine goes away.
#   scripts/commit_results.sh [RUNS=outputs/table2] [INTO=results/table2]      # once
#   while sleep 300; do scripts/commit_results.sh; done                       # beside a sweep
# Only the result folders (and, for results/table2, the pages built from them) are committed
# (`git commit --only`): other staged work stays staged. The generated blocks of docs/results.md
# and README.md are rebuilt in the same commit, so every commit's pages match its results
# (tests/test_results.py); a page with edits of its own is left alone and named.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-outputs/table2}
INTO=${2:-results/table2}
PY=${PYTHON:-.venv/bin/python}
PAGES=(docs/results.md README.md)
[ -d "$RUNS" ] || exit 0
written=()
while read -r state dest; do
  [ "$state" = wrote ] && written+=("$dest")
done < <("$PY" -m seqrec.report.export "$RUNS" --into "$INTO")
[ ${#written[@]} -gt 0 ] || exit 0
git add -- "${written[@]}"
paths=("${written[@]}")
if [ "$INTO" = results/table2 ]; then
  if git diff --quiet HEAD -- "${PAGES[@]}"; then
    "$PY" -m seqrec.report --runs "$INTO" --page docs/results.md --page README.md --pages-only >/dev/null
    paths+=("${PAGES[@]}")
  else
    echo "commit_results: ${PAGES[*]} have uncommitted edits; rebuild their generated blocks by hand" >&2
  fi
fi
message="results: $(printf '%s\n' "${written[@]#"$INTO"/}" | paste -sd ' ' -)"
for try in 1 2 3 4 5; do  # another git command may hold the index lock for a moment
  if git commit --quiet --only -m "$message" -- "${paths[@]}"; then break; fi
  sleep 3
done
