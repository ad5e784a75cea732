#!/usr/bin/env bash
# Export every finished run below RUNS into results/ and commit each new or changed result folder
# on its own, so a long sweep loses nothing finished when the machine goes away.
#   scripts/commit_results.sh [RUNS=outputs/table2] [INTO=results/table2]      # once
#   while sleep 300; do scripts/commit_results.sh; done                       # beside a sweep
# Only the result folders are committed (`git commit --only`): other staged work stays staged.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-outputs/table2}
INTO=${2:-results/table2}
PY=${PYTHON:-.venv/bin/python}
[ -d "$RUNS" ] || exit 0
"$PY" -m seqrec.report.export "$RUNS" --into "$INTO" | while read -r state dest; do
  [ "$state" = wrote ] || continue
  git add -- "$dest"
  for try in 1 2 3 4 5; do  # another git command may hold the index lock for a moment
    if git commit --quiet --only -m "results: ${dest#"$INTO"/}" -- "$dest"; then break; fi
    sleep 3
  done
done
