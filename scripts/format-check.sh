#!/usr/bin/env bash
# Checks that every tracked C++ file is formatted as .clang-format says
# (clang-format --dry-run --Werror). Prints each file that is not, and how to
# fix it. With --fix, formats them in place instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! command -v clang-format >/dev/null; then
  echo "format-check: clang-format not found; scripts/install-deps.sh installs it" >&2
  exit 2
fi

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cpp' '*.h')
else  # an exported tree without .git
  mapfile -t files < <(find . -path './build*' -prune -o \( -name '*.cpp' -o -name '*.h' \) -print |
    sed 's|^\./||' | sort)
fi
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  echo "format-check: formatted ${#files[@]} files"
  exit 0
fi

bad=()
for f in "${files[@]}"; do
  if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
    bad+=("$f")
  fi
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "format-check: ${#bad[@]} of ${#files[@]} files are not clang-formatted:" >&2
  printf '  %s\n' "${bad[@]}" >&2
  echo "format-check: run scripts/format-check.sh --fix (or clang-format -i FILE)" >&2
  exit 1
fi
echo "format-check: all ${#files[@]} C++ files clang-formatted"
