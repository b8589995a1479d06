#!/usr/bin/env bash
# voxdialler.service ExecStart: the dialler loop with its health server on 127.0.0.1:8090.
set -euo pipefail
exec .venv/bin/python -m uvicorn voxdialler.app:app \
  --host "${VOXDIALLER_HOST:-127.0.0.1}" \
  --port "${VOXDIALLER_PORT:-8090}" \
  --workers 1 \
  --app-dir src \
  --log-level "${LOG_LEVEL:-info}"
