#!/usr/bin/env bash
# Creates (once) the Python venv for HM3's tools (fixture trainer, conformance checks against pymoo,
# mergekit, transformers) and prints its path. The venv lives outside the clone, keyed by the hash of
# the lock file, so a machine builds it once per lock: ~/.cache/hm3/venv-<hash>.
# Python is for tools only; the product is TypeScript.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lock="$here/requirements.lock"
hash=$(sha256sum "$lock" | cut -c1-16)
venv="${HM3_CACHE_DIR:-$HOME/.cache/hm3}/venv-$hash"
if [ ! -f "$venv/.complete" ]; then
  echo "hm3: creating the Python tool venv $venv (first run on this machine; torch brings a few GB)" >&2
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$lock" >&2
  touch "$venv/.complete"
fi
echo "$venv"
