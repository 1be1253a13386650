#!/usr/bin/env bash
# Creates (once) the Python venv for HM3's tools (fixture trainer, conformance checks against pymoo,
# mergekit, transformers) and prints its path. The venv lives outside the clone, keyed by the hash of
# the lock file, so a machine builds it once per lock: ~/.cache/hm3/venv-<hash>.
# Several callers (parallel test runs, helpers) may ask at once: the body runs under an exclusive
# flock on <cache>/venv.lock, so one creates the venv and the others wait, then reuse it.
# Python is for tools only; the product is TypeScript.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lock="$here/requirements.lock"
hash=$(sha256sum "$lock" | cut -c1-16)
cache="${HM3_CACHE_DIR:-$HOME/.cache/hm3}"
venv="$cache/venv-$hash"
mkdir -p "$cache"
exec 9>"$cache/venv.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  echo "hm3: creating the Python tool venv $venv (first run on this machine; torch brings a few GB)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$lock" >&2
  touch "$venv/.complete"
fi
flock -u 9
echo "$venv"
