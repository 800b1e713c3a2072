"""benchmarks/bench_servers.py still runs end to end, in a tiny mode.

A smoke test so that the server benchmark cannot rot: a few hundred events, one round, a few
idle streams and one disconnect trial per case, on real servers over loopback. It checks that
every section produced figures and that every contender streamed its events, never a speed or
memory target (timed assertions are for benchmarks, not tests). Its servers (uvicorn,
FastAPI, Flask, gunicorn, Django) and sse-starlette are in the ``test`` extra (the script
itself leaves the sse-starlette row out when it is not installed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_servers.py"


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc and uses epoll")
def test_bench_servers_tiny_run(tmp_path: Path) -> None:
    out = tmp_path / "servers.json"
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--events=300",
            "--rounds=1",
            "--streams=4",
            "--stream-events=30",
            "--idle=10,20",
            "--idle-rounds=1",
            "--idle-heartbeat=0.2",
            "--trials=1",
            "--wait=0.5",
            "--wsgi-events=200",
            "--contenders=naive",
            f"--json={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    results = data["results"]
    assert set(results) == {"long", "concurrent", "idle", "disconnect", "wsgi-django"}
    assert data["machine"]["packages"]["uvicorn"]

    long = results["long"]
    for name in ("floor", "naive", "llmsse"):
        assert long["samples"][name][0]["events_per_s"] > 0
        assert long["checks"][name]["data_events"] == 300
    # llmsse and the floor (llmsse's own bytes) carry line breaks inside a
    # token correctly; the naive loop does not (the corpus has such tokens).
    assert long["checks"]["llmsse"]["text_ok"]
    assert long["checks"]["floor"]["text_ok"]
    assert not long["checks"]["naive"]["text_ok"]

    for samples in results["concurrent"]["samples"].values():
        assert samples[0]["events_per_s"] > 0
    for rows in results["idle"]["samples"].values():
        assert rows[0]["20"]["rss_kb"] > 0
    disconnect = results["disconnect"]["results"]
    assert {"starlette: llmsse", "flask: llmsse", "django: llmsse"} <= set(disconnect)
    for modes in disconnect.values():
        assert len(modes["drip"]) == len(modes["idle"]) == 1
    for res in results["wsgi-django"].values():
        assert res["checks"]["llmsse"]["text_ok"]
        assert res["samples"]["llmsse"][0]["events_per_s"] > 0
    assert "Targets" in result.stdout
