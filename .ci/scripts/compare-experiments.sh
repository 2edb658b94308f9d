#!/usr/bin/env bash
# Prints the experiments that the pull-request workflow (.github/workflows/compare.yml) passes to
# `cargo xtask compare`, one name a line, sorted: `smoke` always, and each experiments/*.toml
# that changed between BASE_COMMIT and HEAD and that HEAD still has (a deleted one cannot run).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: compare-experiments.sh BASE_COMMIT" >&2
  exit 2
fi
if ! base=$(git rev-parse --verify --quiet "$1^{commit}"); then
  echo "compare-experiments.sh: '$1' is not a commit of this repository" >&2
  exit 2
fi
top=$(git rev-parse --show-toplevel)
cd "$top"

# `:(glob)`: `*` stops at a slash, so only the files directly in experiments/ count.
changed=$(git -c core.quotePath=false diff --name-only --no-renames "$base" HEAD -- \
  ':(glob)experiments/*.toml')
names=(smoke)
while IFS= read -r path; do
  if [[ -n $path ]] && git cat-file -e "HEAD:$path" 2>/dev/null; then
    name=${path#experiments/}
    names+=("${name%.toml}")
  fi
done <<<"$changed"
printf '%s\n' "${names[@]}" | LC_ALL=C sort -u
