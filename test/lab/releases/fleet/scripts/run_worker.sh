#!/usr/bin/env bash
# /opt/voxcore/scripts/run_worker.sh (production shape; uv run replaced by the offline .venv)
set -euo pipefail
SOCKET="${VOXCORE_SOCKET:-}"
PORT="${VOXCORE_PORT:-8001}"
HOST="${VOXCORE_HOST:-127.0.0.1}"
if [ -n "$SOCKET" ]; then
  # Unix domain socket mode (pre-forked architecture)
  rm -f "$SOCKET"
  exec .venv/bin/python -m uvicorn voxcore.app:app \
    --uds "$SOCKET" \
    --workers 1 \
    --app-dir src \
    --log-level "${LOG_LEVEL:-info}"
else
  # TCP port mode (legacy / development)
  exec .venv/bin/python -m uvicorn voxcore.app:app \
    --host "$HOST" \
    --port "$PORT" \
    --workers 1 \
    --app-dir src \
    --log-level "${LOG_LEVEL:-info}"
fi
