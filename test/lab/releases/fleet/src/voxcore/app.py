"""VoxCore worker stand-in for the voxops test lab.

One uvicorn process = one worker = MAX_CONCURRENT_CALLS calls (1 in production).
Only the Python standard library plus Debian's python3-fastapi/python3-uvicorn are used.
"""

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect

ROOT = Path(__file__).resolve().parents[2]


def _read(name: str, default: str = "") -> str:
    try:
        return (ROOT / name).read_text().strip()
    except OSError:
        return default


# Read once at import, as a real service does: a checkout of another tag without a restart
# leaves /health reporting the running release.
VERSION = _read("VERSION", "unknown")
FLAVOUR = _read("RELEASE_FLAVOUR", "good")
MAX_CALLS = int(os.environ.get("MAX_CONCURRENT_CALLS", "1"))
WORKERS = int(os.environ.get("VOXCORE_WORKERS", "1"))
TICK_SECONDS = int(os.environ.get("VOXCORE_TICK_MS", "500")) / 1000
SOCKET_PATTERN = os.environ.get("VOXCORE_SOCKET_PATTERN", "/tmp/voxcore_{i}.sock")
PROBE_TIMEOUT = float(os.environ.get("VOXCORE_PROBE_TIMEOUT", "0.5"))
BUSY_GRACE = int(os.environ.get("VOXCORE_BUSY_GRACE_MS", "250")) / 1000


def _log(msg: str) -> None:
    print(f"voxcore[{os.getpid()}] {VERSION}: {msg}", file=sys.stderr, flush=True)


# The bad releases misbehave at import time: uvicorn imports the app before it installs its
# signal handlers and before it binds, so SIGTERM still stops these processes at once.
if FLAVOUR == "slowboot":
    _log("slowboot release: sleeping 5 s before binding")
    time.sleep(5)
elif FLAVOUR == "nosocket":
    _log("nosocket release: this process will never bind its socket")
    while True:
        time.sleep(3600)

app = FastAPI(title="voxcore", version=VERSION)


class Calls:
    """Calls held by this process. asyncio is single-threaded: check and take never interleave."""

    def __init__(self) -> None:
        self.active = 0
        self.max_seen = 0
        self.total = 0
        self.rejected = 0
        self.waiters: list = []

    def try_take(self) -> bool:
        if self.active >= MAX_CALLS:
            return False
        self.active += 1
        self.total += 1
        self.max_seen = max(self.max_seen, self.active)
        return True

    async def take_within(self, seconds: float) -> bool:
        """try_take, waiting up to `seconds` for a slot that is being released.

        A caller sees its hangup complete a moment before this process has run the call's
        cleanup; without the grace, a call placed right after another one ended on this worker
        is refused although the worker was about to be free. A live call still gets refused.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self.try_take():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter = loop.create_future()
            self.waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except asyncio.TimeoutError:
                return self.try_take()
        return True

    def release(self) -> None:
        self.active -= 1
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


calls = Calls()
background: set = set()


def _health_body() -> dict:
    return {
        "status": "ok" if FLAVOUR != "badhealth" else "error",
        "version": VERSION,
        "active_calls": calls.active,
        "max_calls": MAX_CALLS,
        "max_seen_calls": calls.max_seen,
        "total_calls": calls.total,
        "rejected_calls": calls.rejected,
        "pid": os.getpid(),
        "workers": WORKERS,
    }


@app.get("/health")
async def health() -> JSONResponse:
    if FLAVOUR == "badhealth":
        return JSONResponse(_health_body(), status_code=500)
    return JSONResponse(_health_body())


async def _probe_worker(i: int) -> dict:
    """GET /health over worker i's socket (or TCP port in the legacy layout)."""
    entry: dict = {"worker": i}
    writer = None
    try:
        if os.environ.get("VOXCORE_SOCKET") or not os.environ.get("VOXCORE_PORT"):
            path = SOCKET_PATTERN.replace("{i}", str(i))
            entry["socket"] = path
            opening = asyncio.open_unix_connection(path)
        else:
            port = 8000 + i
            entry["port"] = port
            opening = asyncio.open_connection("127.0.0.1", port)

        async def exchange() -> tuple:
            nonlocal writer
            reader, writer = await opening
            writer.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return await reader.read()

        raw = await asyncio.wait_for(exchange(), PROBE_TIMEOUT)
        head, _, body = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        entry["http_status"] = status
        data = json.loads(body)
        entry.update({k: data.get(k) for k in ("version", "pid", "active_calls", "max_calls")})
        entry["healthy"] = status == 200 and data.get("status") == "ok"
    except asyncio.TimeoutError:
        entry.update(healthy=False, error="timeout")
    except (OSError, ValueError, IndexError) as exc:
        entry.update(healthy=False, error=f"{type(exc).__name__}: {exc}")
    finally:
        if writer is not None:
            writer.close()
    return entry


@app.get("/health/fleet")
async def health_fleet() -> JSONResponse:
    workers = await asyncio.gather(*(_probe_worker(i) for i in range(1, WORKERS + 1)))
    healthy = [w for w in workers if w["healthy"]]
    capacity = sum(int(w.get("max_calls") or 0) for w in healthy)
    busy = sum(1 for w in healthy if int(w.get("active_calls") or 0) >= int(w.get("max_calls") or 1))
    active = sum(int(w.get("active_calls") or 0) for w in healthy)
    body = {
        "status": "ok" if len(healthy) == WORKERS else "degraded",
        "expected_workers": WORKERS,
        "capacity": capacity,
        "healthy": len(healthy),
        "busy": busy,
        "active_calls": active,
        "free": capacity - active,
        "versions": sorted({str(w.get("version")) for w in healthy}),
        "workers": workers,
    }
    return JSONResponse(body)


@app.websocket("/ws/call")
async def ws_call(ws: WebSocket) -> None:
    await ws.accept()
    if not await calls.take_within(BUSY_GRACE):
        calls.rejected += 1
        await ws.close(code=1008)
        return
    tick_task = None
    try:

        async def tick() -> None:
            n = 0
            while True:
                await asyncio.sleep(TICK_SECONDS)
                n += 1
                try:
                    await ws.send_text(json.dumps({"type": "tick", "n": n, "pid": os.getpid()}))
                except Exception:  # the call is gone; the receive loop sees the disconnect
                    return

        await ws.send_text(json.dumps({"type": "hello", "version": VERSION, "pid": os.getpid()}))
        tick_task = asyncio.create_task(tick())
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            if msg.get("text") is not None:
                await ws.send_text(msg["text"])
            elif msg.get("bytes") is not None:
                await ws.send_bytes(msg["bytes"])
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        if tick_task is not None:
            tick_task.cancel()
        calls.release()


async def _hold_background_call(seconds: float) -> None:
    try:
        await asyncio.sleep(seconds)
    finally:
        calls.release()


async def _start_background_call(request: Request) -> JSONResponse:
    duration = 5.0
    raw = await request.body()
    if raw.strip():
        try:
            body = json.loads(raw)
            duration = float(body.get("duration", duration)) if isinstance(body, dict) else duration
        except (ValueError, TypeError):
            return JSONResponse({"error": "bad_request"}, status_code=400)
    if not calls.try_take():
        calls.rejected += 1
        return JSONResponse({"error": "at_capacity"}, status_code=429)
    task = asyncio.create_task(_hold_background_call(max(0.0, duration)))
    background.add(task)
    task.add_done_callback(background.discard)
    return JSONResponse({"status": "accepted", "duration": duration, "pid": os.getpid()}, status_code=202)


@app.post("/attach")
async def attach(request: Request) -> JSONResponse:
    return await _start_background_call(request)


@app.post("/livekit/dialout")
async def livekit_dialout(request: Request) -> JSONResponse:
    return await _start_background_call(request)


@app.post("/livekit/widget")
async def livekit_widget(request: Request) -> JSONResponse:
    return await _start_background_call(request)
