#!/usr/bin/env bash
# Build the lab's four bare release repos from the source trees beside this script.
#   test/lab/releases/build-repos.sh OUT_DIR   -> OUT_DIR/{fleet,api,dialler,console}.git
# Deterministic (fixed names, dates and modes: same commit ids on every machine), offline,
# idempotent (each OUT_DIR/<repo>.git is rebuilt aside and swapped in with a rename).
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
work=$(mktemp -d "$out/.build-repos.XXXXXX")
trap 'rm -rf "$work"' EXIT

# No user or system git config may leak into the objects.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME="$work" TZ=UTC LC_ALL=C
export GIT_AUTHOR_NAME="Vox Release Bot" GIT_AUTHOR_EMAIL="release-bot@voxlab.invalid"
export GIT_COMMITTER_NAME="Vox Release Bot" GIT_COMMITTER_EMAIL="release-bot@voxlab.invalid"
git_() { git -c init.defaultBranch=main -c commit.gpgsign=false -c tag.gpgsign=false \
  -c core.autocrlf=false -c core.fileMode=true -c user.useConfigOnly=false "$@"; }

# tag | date | RELEASE_FLAVOUR (fleet only; "good" = no file) | changelog line
releases_all=(
  "v1.4.2|2024-03-04T10:00:00Z|good|Baseline release running in the lab."
  "v1.5.0|2024-05-06T10:00:00Z|good|Minor release."
)
releases_fleet_bad=(
  "v1.5.1-badhealth|2024-06-03T10:00:00Z|badhealth|Broken: /health answers 500."
  "v1.5.1-nosocket|2024-06-04T10:00:00Z|nosocket|Broken: the worker never binds its socket."
  "v1.5.1-slowboot|2024-06-05T10:00:00Z|slowboot|Good, but a worker takes ~5 s before binding."
)
release_last="v1.6.0|2024-07-01T10:00:00Z|good|Minor release."

build_repo() {
  local repo=$1; shift
  local bare="$work/$repo.git" tree="$work/$repo.tree" changelog="$work/$repo.changelog"
  git_ init -q --bare "$bare"
  : > "$changelog"
  local entry tag date flavour note
  for entry in "$@"; do
    IFS='|' read -r tag date flavour note <<<"$entry"
    rm -rf "$tree"
    mkdir -p "$tree"
    cp -R "$here/$repo/." "$tree/"
    if [ "$repo" != console ]; then
      cp "$here/common/scripts/install.sh" "$tree/scripts/install.sh"
    fi
    find "$tree" \( -name __pycache__ -o -name .venv -o -name dist \) -prune -exec rm -rf {} +
    find "$tree" -type f -exec chmod 0644 {} +
    chmod 0755 "$tree"/scripts/*.sh
    printf '%s\n' "$tag" > "$tree/VERSION"
    if [ "$flavour" != good ]; then
      printf '%s\n' "$flavour" > "$tree/RELEASE_FLAVOUR"
    fi
    printf -- '- %s (%s): %s\n' "$tag" "${date%%T*}" "$note" | cat - "$changelog" > "$changelog.new"
    mv "$changelog.new" "$changelog"
    { printf '# Changelog\n\n'; cat "$changelog"; } > "$tree/CHANGELOG.md"

    GIT_INDEX_FILE="$work/$repo.index" GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" \
      git_ --git-dir="$bare" --work-tree="$tree" add -A
    GIT_INDEX_FILE="$work/$repo.index" GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" \
      git_ --git-dir="$bare" --work-tree="$tree" commit -q -m "Release $tag"
    GIT_COMMITTER_DATE="$date" git_ --git-dir="$bare" tag -a "$tag" -m "Release $tag"
  done
  rm -rf "$tree" "$work/$repo.index" "$changelog"
  rm -rf "$out/$repo.git"
  mv "$bare" "$out/$repo.git"
  git_ --git-dir="$out/$repo.git" for-each-ref --format="$repo %(refname:short) %(*objectname:short)" refs/tags
}

# All tags sit on one linear main branch, so a plain `git fetch` follows every tag.
build_repo fleet "${releases_all[@]}" "${releases_fleet_bad[@]}" "$release_last"
build_repo api "${releases_all[@]}" "$release_last"
build_repo dialler "${releases_all[@]}" "$release_last"
build_repo console "${releases_all[@]}" "$release_last"
