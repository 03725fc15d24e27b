"""The load generator: `wrk` (C, one event loop), pinned to its own core, driven by generated Lua scripts.

Why wrk: one wrk thread sustains tens of thousands of requests per second on one core, so it is never the
bottleneck against one Python API core (a Python generator such as Locust is, near the ceiling). It comes
from Debian (`apt-get install wrk`); :func:`ensure_wrk` installs it when it is missing and we are root.

Each run is closed-loop (``connections`` clients, each sending its next request when the previous answer
arrives) unless ``rate`` is given: then the script paces the requests to that many per second in total
(open-loop schedule, see ``_PACING``), which is how a fixed background load is applied.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PERCENTILES = (50, 95, 99)


class LoadgenError(RuntimeError):
    """wrk is missing or a run failed; the message says what to do."""


def ensure_wrk() -> str:
    """The path of `wrk`, installing Debian's package first when it is missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("==> Installing wrk (Debian package) for the HTTP benchmarks", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", "wrk"]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
            subprocess.run(install, env=env, check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise LoadgenError(
        "wrk is not installed and cannot be installed here: run `sudo apt-get install wrk` "
        "(Debian/Ubuntu) or `brew install wrk`, then `make bench` again."
    )


@dataclass(frozen=True)
class Request:
    """One request a scenario sends; a scenario cycles through its list."""

    path: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass
class RunResult:
    """What one wrk run measured (latencies in milliseconds)."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: dict[str, int]

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for our ASCII data


# Pacing for a fixed rate: every call of delay() hands out the next slot of one schedule per wrk thread,
# so the thread's connections together send `rate` requests a second whatever the latency (a late answer
# makes its connection catch up: no coordinated omission while latencies stay below the slot spacing
# times the connection count). wrk rounds the delay down to whole milliseconds.
_PACING = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local bench_ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, bench_ts)
  return tonumber(bench_ts.tv_sec) * 1000 + tonumber(bench_ts.tv_nsec) / 1e6
end
local interval_ms = 1000 / RATE
local next_slot = nil
function delay()
  local now = now_ms()
  if next_slot == nil then next_slot = now end
  next_slot = next_slot + interval_ms
  local wait = next_slot - now
  if wait < 0 then return 0 end
  return wait
end
"""

_SCRIPT = """
local requests = {}
local n = 0
local counter = 0
local statuses = {}
function init(args)
%(build)s
  n = #requests
  counter = math.random(0, n - 1)
end
function request()
  counter = counter + 1
  return requests[(counter %% n) + 1]
end
%(pacing)s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"p50":%%d,"p95":%%d,"p99":%%d,"mean":%%f,"max":%%d,' ..
    '"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def render_script(requests: list[Request], rate: float | None = None) -> str:
    """The Lua script that cycles through `requests` (each wrk thread starts at a random offset)."""
    if not requests:
        raise ValueError("a scenario needs at least one request")
    lines = []
    for req in requests:
        headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in req.headers.items())
        body = _lua_string(req.body) if req.body is not None else "nil"
        lines.append(
            f"  requests[#requests + 1] = wrk.format({_lua_string(req.method)}, "
            f"{_lua_string(req.path)}, {{{headers}}}, {body})"
        )
    pacing = f"RATE = {float(rate)!r}\n{_PACING}" if rate else ""
    return _SCRIPT % {"build": "\n".join(lines), "pacing": pacing}


def run(
    base_url: str,
    requests: list[Request],
    *,
    seconds: float,
    connections: int = 16,
    rate: float | None = None,
    core: int | None = 0,
    timeout_s: int = 10,
) -> RunResult:
    """Run wrk (one thread, pinned to `core`) against `base_url` and return what it measured."""
    wrk = ensure_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-wrk-", delete=False) as script:
        script.write(render_script(requests, rate))
    try:
        argv = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout_s}s",
            "-s",
            script.name,
            base_url,
        ]
        if core is not None and shutil.which("taskset"):
            argv = ["taskset", "-c", str(core), *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    finally:
        os.unlink(script.name)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise LoadgenError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    duration = data["duration_us"] / 1e6
    return RunResult(
        requests=data["requests"],
        seconds=round(duration, 2),
        rps=round(data["requests"] / duration, 1) if duration else 0.0,
        p50_ms=round(data["p50"] / 1000, 2),
        p95_ms=round(data["p95"] / 1000, 2),
        p99_ms=round(data["p99"] / 1000, 2),
        mean_ms=round(data["mean"] / 1000, 2),
        max_ms=round(data["max"] / 1000, 2),
        errors={k: data[k] for k in ("connect", "read", "write", "status", "timeout") if data[k]},
    )


def script_path_for_debugging(requests: list[Request], rate: float | None = None) -> Path:
    """Write the script to a temporary file and return its path (to run wrk by hand)."""
    handle, name = tempfile.mkstemp(suffix=".lua", prefix="bench-wrk-")
    with os.fdopen(handle, "w") as script:
        script.write(render_script(requests, rate))
    return Path(name)
