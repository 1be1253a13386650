#!/usr/bin/env bash
# Prints "<python> <pythonpath>": the main tool venv's python (tools/python/ensure-venv.sh) and a folder
# holding mergekit and its few extra dependencies (requirements.lock beside this file, installed once
# with --no-deps, keyed by the hash of both locks) to put on PYTHONPATH.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=$("$here/../../python/ensure-venv.sh")
hash=$(cat "$here/requirements.lock" "$here/../../python/requirements.lock" | sha256sum | cut -c1-16)
cache="${HM3_CACHE_DIR:-$HOME/.cache/hm3}"
target="$cache/mergekit-$hash"
exec 9>"$cache/mergekit.lock"
flock 9
if [ ! -f "$target/.complete" ]; then
  echo "hm3: installing mergekit for the conformance check into $target" >&2
  rm -rf "$target"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --target "$target" -r "$here/requirements.lock" >&2
  touch "$target/.complete"
fi
flock -u 9
echo "$venv/bin/python $target"
