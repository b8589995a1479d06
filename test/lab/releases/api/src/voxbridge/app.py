"""Backend API (voxbridge) stand-in for the voxops test lab: uvicorn on 127.0.0.1:8080."""

import os
from pathlib import Path

from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[2]
try:
    VERSION = (ROOT / "VERSION").read_text().strip()
except OSError:
    VERSION = "unknown"

app = FastAPI(title="voxbridge", version=VERSION)


@app.get("/health")
async def health() -> dict:
    return {"status": "ok", "version": VERSION, "pid": os.getpid()}
