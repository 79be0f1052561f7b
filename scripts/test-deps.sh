#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (deps/apt-test.txt) that are missing,
# so `make test` never skips browser, Java or container tests silently on a fresh machine.
# Not root and something missing: stops, naming what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
LIST=deps/apt-test.txt

wanted=$(grep -v '^[[:space:]]*#' "$LIST" | tr -s '[:space:]' '\n' | sed '/^$/d' | sort -u)
missing=()
for package in $wanted; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "error: the tests need these Debian packages (listed in $LIST): ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing test dependencies: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
