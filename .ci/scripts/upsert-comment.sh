#!/usr/bin/env bash
# Creates or updates the one pull-request comment of `cargo xtask compare`: the first comment by a
# bot (the workflow's token) whose body holds the marker `<!-- smallmind-compare -->` gets
# SUMMARY_FILE as its body, or a new comment is posted when there is none. Run by
# .github/workflows/compare-comment.yml with GH_TOKEN set; needs `gh` and `jq`.
#
# PR_NUMBER comes from an artifact of a pull request's run, so it is untrusted: anything but
# digits is refused (exit 2, one line on stderr), and so is a summary without the marker. With
# HEAD_SHA (the compared commit), nothing is written unless it is the pull request's head: a
# run cannot comment on another pull request, and a run overtaken by a newer push stays silent.
set -euo pipefail

readonly marker='<!-- smallmind-compare -->'

refuse() {
  echo "upsert-comment.sh: $1" >&2
  exit 2
}

if [[ $# -lt 3 || $# -gt 4 ]]; then
  refuse "usage: upsert-comment.sh OWNER/REPO PR_NUMBER SUMMARY_FILE [HEAD_SHA]"
fi
repo=$1
pr=$2
summary=$3
head_sha=${4-}
[[ $repo =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || refuse "the repository is not OWNER/REPO"
# Digits listed, not a range: a range may follow the locale's collation.
[[ $pr =~ ^[0123456789]+$ ]] || refuse "the pull-request number is not digits only"
[[ -f $summary ]] || refuse "no summary file at $summary"
grep -qF -- "$marker" "$summary" || refuse "$summary does not hold the marker $marker"
[[ -z $head_sha || $head_sha =~ ^[0123456789abcdef]{40}$ ]] || refuse "HEAD_SHA is not a 40-hex commit"

if [[ -n $head_sha ]]; then
  pr_head=$(gh api "repos/$repo/pulls/$pr" | jq -r '.head.sha')
  if [[ $pr_head != "$head_sha" ]]; then
    echo "not commenting: the head of #$pr is $pr_head, not the compared $head_sha"
    exit 0
  fi
fi

# `--paginate` prints one JSON array per page; `jq -s` takes them all.
id=$(gh api --paginate "repos/$repo/issues/$pr/comments" |
  jq -rs --arg marker "$marker" \
    '[.[][] | select(.user.type == "Bot" and ((.body // "") | contains($marker)))] | first | .id // empty')
body=$(jq -nc --rawfile body "$summary" '{body: $body}')
if [[ -n $id ]]; then
  gh api --method PATCH "repos/$repo/issues/comments/$id" --input - <<<"$body" >/dev/null
  echo "updated comment $id on #$pr"
else
  gh api --method POST "repos/$repo/issues/$pr/comments" --input - <<<"$body" >/dev/null
  echo "commented on #$pr"
fi
