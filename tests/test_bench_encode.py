"""benchmarks/bench_encode.py still runs end to end, in a tiny mode.

A smoke test so that the encode benchmark cannot rot: a few hundred chunks, three rounds,
the cache flush on. Every contender must read back its own text (the script checks it and
reports it per contender); no speed target is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from llmsse import _chat

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_encode.py"


def test_bench_encode_tiny_run(tmp_path: Path) -> None:
    out = tmp_path / "encode.json"
    args = ["--chunks=300", "--rounds=3", "--budget=1", "--flush=1", f"--json={out}"]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "caches flushed (1 MB)" in result.stdout
    data = json.loads(out.read_text())
    assert data["config"]["flush_mb"] == 1
    results = data["results"]
    assert {"llmsse text", "llmsse openai", "naive f-string", "model_dump_json"} <= set(results)
    # With the C speedups built (as on CI), a row without them beside the text row.
    assert data["config"]["c_speedups"] is _chat.SPEEDUPS
    assert ("llmsse text, pure" in results) is _chat.SPEEDUPS
    assert ("C speedups: built" in result.stdout) is _chat.SPEEDUPS
    for name, row in results.items():
        assert len(row["samples_ns_per_chunk"]) == 3, name
        # the naive loop is the one contender that loses line breaks
        assert row["text_roundtrips"] is (name != "naive f-string"), name
    assert [t["target"] for t in data["targets"]] == [
        "text within 1.25x of the naive loop",
        "text >= 2.4x faster than sse-starlette",
        "openai no slower than model_dump_json",
    ]
