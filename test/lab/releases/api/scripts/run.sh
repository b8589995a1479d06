#!/usr/bin/env bash
# voxbridge.service ExecStart: the backend API on 127.0.0.1:8080.
set -euo pipefail
exec .venv/bin/python -m uvicorn voxbridge.app:app \
  --host "${VOXBRIDGE_HOST:-127.0.0.1}" \
  --port "${VOXBRIDGE_PORT:-8080}" \
  --workers 1 \
  --app-dir src \
  --log-level "${LOG_LEVEL:-info}"
