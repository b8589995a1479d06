#!/bin/sh
# Offline stand-in for `uv sync`: run from the checkout root. Idempotent.
# Creates .venv on top of Debian's python3-fastapi/python3-uvicorn and byte-compiles src/.
set -eu
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c 'import fastapi, uvicorn' >/dev/null 2>&1; then
  rm -rf .venv
  "${PYTHON:-python3}" -m venv --system-site-packages --without-pip .venv
  if ! .venv/bin/python -c 'import fastapi, uvicorn' >/dev/null 2>&1; then
    echo "install: $(.venv/bin/python -V) has no fastapi/uvicorn (apt-get install python3-fastapi python3-uvicorn)" >&2
    exit 1
  fi
fi
# "Resolve" the lock file: takes a realistic, measurable moment, like uv does on a warm cache.
sleep "${VOXLAB_INSTALL_SECONDS:-1.5}"
.venv/bin/python -m compileall -q -f src
cp VERSION .venv/installed-version
echo "install: $(cat VERSION) ready in $(pwd)/.venv"
