"""Dialler (voxdialler) stand-in for the voxops test lab.

An asyncio loop leases campaign calls in the background; a small health server on
127.0.0.1:8090 reports it. /health answers 503 if the loop has stalled.
"""

import asyncio
import os
import random
import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse

ROOT = Path(__file__).resolve().parents[2]
try:
    VERSION = (ROOT / "VERSION").read_text().strip()
except OSError:
    VERSION = "unknown"

LOOP_SECONDS = float(os.environ.get("VOXDIALLER_LOOP_SECONDS", "1"))
MAX_LEASED = int(os.environ.get("VOXDIALLER_MAX_LEASED", "3"))

app = FastAPI(title="voxdialler", version=VERSION)


class Loop:
    def __init__(self) -> None:
        self.leased_calls = 0
        self.ticks = 0
        self.last_tick = 0.0
        self.task = None


loop_state = Loop()


async def dial_loop() -> None:
    rng = random.Random(os.getpid())
    while True:
        # A lab has no carrier: leases come and go at random within MAX_LEASED.
        loop_state.leased_calls = max(0, min(MAX_LEASED, loop_state.leased_calls + rng.choice((-1, 0, 1))))
        loop_state.ticks += 1
        loop_state.last_tick = time.monotonic()
        await asyncio.sleep(LOOP_SECONDS)


@app.on_event("startup")
async def start_loop() -> None:
    loop_state.task = asyncio.create_task(dial_loop())


@app.on_event("shutdown")
async def stop_loop() -> None:
    if loop_state.task is not None:
        loop_state.task.cancel()


@app.get("/health")
async def health() -> JSONResponse:
    running = loop_state.task is not None and not loop_state.task.done()
    fresh = time.monotonic() - loop_state.last_tick < max(5.0, 5 * LOOP_SECONDS)
    ok = running and fresh
    body = {
        "status": "ok" if ok else "error",
        "version": VERSION,
        "pid": os.getpid(),
        "leased_calls": loop_state.leased_calls,
        "loop_ticks": loop_state.ticks,
    }
    return JSONResponse(body, status_code=200 if ok else 503)
