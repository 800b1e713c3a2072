"""benchmarks/bench_resumable.py still runs end to end, in a tiny mode.

A smoke test so that the resumable-stream benchmark cannot rot: a few hundred events, one
round, a few idle streams, on a redis-server the script starts itself. The script checks
every reader's events against the source (nothing lost, nothing repeated) and fails
otherwise; here only that every section produced figures, never a speed target.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_resumable.py"


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_bench_resumable_tiny_run(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed: `apt-get install redis-server` (or .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: this test must not be skipped)")
        pytest.skip(message)
    out = tmp_path / "resumable.json"
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--events=300",
            "--readers=3",
            "--paced=20",
            "--interval=0.002",
            "--idle=5",
            "--rounds=1",
            f"--json={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["machine"]["packages"]["redis"]
    results = data["results"]
    assert set(results) == {"rate", "latency", "idle"}
    for section in ("rate", "latency"):
        summary = results[section]["summary"]
        assert set(summary) == {"1", "3"}
        for rows in summary.values():
            assert set(rows) == {"plain", "memory", "redis"}
            assert all(row["events_per_s"] > 0 for row in rows.values())
    for rows in results["latency"]["summary"].values():
        assert all(row["latency_median_ms"] >= 0 for row in rows.values())
    idle = results["idle"]["summary"]
    assert set(idle) == {"memory", "redis"}
    assert "server_kb_per_stream" in idle["redis"]
    assert "[idle]" in result.stdout
