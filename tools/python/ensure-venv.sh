#!/usr/bin/env bash
# Creates (once) the Python venv for HM3's tools (fixture trainer, conformance checks against pymoo,
# mergekit, transformers) and prints its path. The venv lives outside the clone, keyed by the hash of
# the lock file, so a machine builds it once per lock: ~/.cache/hm3/venv-<hash>.
# Several callers (parallel test runs, helpers) may ask at once: the body runs under an exclusive
# flock on <cache>/venv.lock, so one creates the venv and the others wait, then reuse it.
# An optional argument names another lock file (a small tool with its own pins, such as the external
# evaluator or hadolint): it gets its own venv, ~/.cache/hm3/venv-<name>-<hash>, so adding a tool
# never rebuilds the torch venv.
# Python is for tools only; the product is TypeScript.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lock="${1:-$here/requirements.lock}"
if [ ! -f "$lock" ]; then
  echo "hm3: lock file $lock not found" >&2
  exit 2
fi
hash=$(sha256sum "$lock" | cut -c1-16)
cache="${HM3_CACHE_DIR:-$HOME/.cache/hm3}"
if [ $# -ge 1 ]; then
  venv="$cache/venv-$(basename "$(dirname "$(realpath "$lock")")")-$hash"
else
  venv="$cache/venv-$hash"
fi
mkdir -p "$cache"
exec 9>"$cache/venv.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  echo "hm3: creating the Python tool venv $venv (first run on this machine for this lock)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$lock" >&2
  touch "$venv/.complete"
fi
flock -u 9
echo "$venv"
