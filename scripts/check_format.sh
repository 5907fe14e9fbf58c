#!/usr/bin/env bash
# Checks that the C++ and CUDA lines changed since BASE follow .clang-format:
# runs `git clang-format --diff` on the .cpp .h .cu .cuh files that differ
# between BASE and the working tree (commits since BASE and uncommitted
# changes to tracked files), prints the changes clang-format would make and
# exits 1 if there are any. Lines nobody changed are left as they are.
#   scripts/check_format.sh           BASE: the commit in .ci/format-base
#   scripts/check_format.sh main      any commit, branch or tag
# Needs clang-format 14 (scripts/install_deps.sh installs it): other versions
# format some constructs differently.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${1:-$(tr -d '[:space:]' < .ci/format-base)}
if ! git rev-parse --verify --quiet "$BASE^{commit}" > /dev/null; then
  echo "check_format.sh: FAILED: the base commit '$BASE' is not in this repository" \
       "(a shallow clone? run 'git fetch --unshallow', or pass a base: scripts/check_format.sh BASE)" >&2
  exit 2
fi
if ! git merge-base --is-ancestor "$BASE" HEAD; then
  echo "check_format.sh: note: $BASE is not an ancestor of HEAD; checking every line that differs from it" >&2
fi

GIT_CLANG_FORMAT=${GIT_CLANG_FORMAT:-$(command -v git-clang-format-14 || command -v git-clang-format || true)}
CLANG_FORMAT=${CLANG_FORMAT:-$(command -v clang-format-14 || command -v clang-format || true)}
if [ -z "$GIT_CLANG_FORMAT" ] || [ -z "$CLANG_FORMAT" ]; then
  echo "check_format.sh: FAILED: git-clang-format / clang-format 14 not found" \
       "(Debian: apt-get install clang-format-14, or run scripts/install_deps.sh)" >&2
  exit 2
fi
version=$("$CLANG_FORMAT" --version | head -n 1)
if ! [[ $version =~ version\ 14\. ]]; then
  echo "check_format.sh: FAILED: $CLANG_FORMAT is not clang-format 14 ($version);" \
       "set CLANG_FORMAT to a clang-format 14" >&2
  exit 2
fi

EXTENSIONS=cpp,h,cu,cuh
out=$("$GIT_CLANG_FORMAT" --binary "$CLANG_FORMAT" --extensions "$EXTENSIONS" --diff "$BASE" --)
if grep -q '^diff --git' <<< "$out"; then
  printf '%s\n' "$out"
  echo "check_format.sh: FAILED: lines changed since $(git rev-parse --short "$BASE") are not formatted" \
       "as .clang-format says (the diff above is what clang-format would change)." >&2
  echo "  To format them: git add -A && $(basename "$GIT_CLANG_FORMAT") --binary $CLANG_FORMAT" \
       "--extensions $EXTENSIONS $BASE" >&2
  exit 1
fi
echo "check_format.sh: the lines changed since $(git rev-parse --short "$BASE") are formatted"
