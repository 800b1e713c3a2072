"""Resumable streams: what the fan-out through a store costs, Redis beside memory beside none.

Run from the repository root (needs ``redis-server`` on PATH: ``apt-get install
redis-server``; the script starts its own on a free 127.0.0.1 port and kills it at the end)::

    python benchmarks/bench_resumable.py                 # ~2-3 min on a quiet 2-CPU machine
    python benchmarks/bench_resumable.py --quick         # ~20-30 s smoke run
    python benchmarks/bench_resumable.py --json out.json # also save raw samples + machine facts

Three contenders carry the same stream of ``str`` pieces (the source yields to the event loop
before each piece, as a network read does) to readers on the same event loop:

* ``plain``: ``aiter_sse(source, ids=True)`` read directly: no store, no fan-out. With N
  readers that is N generations (what it costs without resumable streams).
* ``memory``: ``astart_stream(source, store=MemoryStore())`` and N ``aresume_sse`` readers.
* ``redis``: the same with ``RedisStore(url=...)`` on a local redis-server (no persistence).

Sections:

1. ``rate``: one stream of E events (default 20,000) read by 1 and by N (default 10) readers;
   events/s of the stream (E / time until every reader has everything) and ratios to plain.
2. ``latency``: a paced stream (an event every 5 ms, default 300) read by 1 and by N readers;
   per delivered event, the time from the source yielding the piece to the reader receiving
   its bytes (median and p95), and the latency added over plain.
3. ``idle``: memory per open stream: K (default 300) live streams with nothing to send, each
   with one reader waiting, in a fresh child process per store and round: the child's RSS
   growth per stream, and for Redis the server's ``used_memory`` growth per stream.

Every reader's events are parsed with ``llmsse.parse`` and checked against the source (ids
1..n once each, every piece exact): a contender that loses or repeats anything fails the run.
With 2 CPUs or more, this process is pinned to CPU 0 and redis-server to CPU 1. Rounds are
interleaved (the order rotates each round); figures are medians over rounds, ratios medians of
the per-round paired ratios. It is a benchmark, not a test: it prints figures and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from importlib import metadata
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import redis.asyncio  # noqa: E402
from bench_encode import machine_facts  # noqa: E402

import llmsse  # noqa: E402
from llmsse.resumable import MemoryStore, RedisStore, Store, aresume_sse, astart_stream  # noqa: E402

CONTENDERS = ["plain", "memory", "redis"]
WORDS = ["The", " quick", " brown", " fox", "\n", " jumps", " over", " the", " lazy", " dog."]
TIMEOUT = 120.0


# ======================================================================================
# redis-server
# ======================================================================================


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server of this run: 127.0.0.1, a free port, no persistence, a temp dir."""

    def __init__(self, cpu: int | None) -> None:
        path = _which("redis-server")
        if path is None:
            raise SystemExit("redis-server is not installed: apt-get install redis-server")
        self.dir = tempfile.mkdtemp(prefix="llmsse-bench-redis-")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        command = [
            path, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
            "--maxclients", "10000",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if cpu is not None and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.process.pid, {cpu})
        deadline = time.monotonic() + 10
        while self.command("PING") != "PONG":
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("redis-server did not start")
            time.sleep(0.02)

    def command(self, *args: str) -> str | None:
        """One inline command; the reply's first line without its type byte."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(" ".join(args).encode() + b"\r\n")
                data = b""
                while not data.endswith(b"\r\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if data.startswith(b"$"):  # a bulk string: read all of it
                    size = int(data[1 : data.index(b"\r\n")])
                    while len(data) < data.index(b"\r\n") + 2 + size + 2:
                        data += sock.recv(65536)
                    start = data.index(b"\r\n") + 2
                    return data[start : start + size].decode()
                return data[1:].decode().strip()
        except OSError:
            return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        with contextlib.suppress(OSError):
            for name in os.listdir(self.dir):
                os.remove(os.path.join(self.dir, name))
            os.rmdir(self.dir)


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")


# ======================================================================================
# One run: a source, a contender, readers
# ======================================================================================


async def source(n: int, interval: float, stamps: list[int] | None) -> AsyncIterator[str]:
    """``n`` pieces; waits ``interval`` (or just yields to the loop) before each. With
    ``stamps``, a piece's production time (ns) is stored under its index and its text is
    ``"<index> "``."""
    for index in range(n):
        if interval:
            await asyncio.sleep(interval)
        else:
            await asyncio.sleep(0)
        if stamps is not None:
            stamps.append(time.perf_counter_ns())
            yield f"{index} "
        else:
            yield WORDS[index % len(WORDS)]


async def read(stream: AsyncIterator[bytes], arrivals: list[int] | None) -> bytes:
    """All the bytes of ``stream``; with ``arrivals``, the receipt time of each event."""
    chunks: list[bytes] = []
    async for chunk in stream:
        chunks.append(chunk)
        if arrivals is not None:
            now = time.perf_counter_ns()
            arrivals.extend([now] * chunk.count(b"\n\n"))
    return b"".join(chunks)


def check(body: bytes, n: int, stamped: bool) -> None:
    """The reader got events 1..n+1 once each: every piece, then ``done``."""
    events = llmsse.parse(body)
    ids = [event.id for event in events]
    if ids != [str(i) for i in range(1, n + 2)]:
        raise AssertionError(f"ids {ids[:5]}...{ids[-5:]} (of {len(ids)}), expected 1..{n + 1}")
    expected = [f"{i} " if stamped else WORDS[i % len(WORDS)] for i in range(n)]
    if [event.data for event in events[:-1]] != expected or events[-1].event != "done":
        raise AssertionError("the events do not carry the source's pieces")


async def run_once(
    kind: str,
    store: Store | None,
    n: int,
    readers: int,
    interval: float,
    stamped: bool,
) -> dict[str, Any]:
    """Stream ``n`` pieces to ``readers`` readers; elapsed time and latencies."""
    stamps: list[int] = []
    arrivals: list[list[int]] = [[] for _ in range(readers)]
    start = time.perf_counter()
    if kind == "plain":
        # One generation per reader (no fan-out); the latency stamps are the first one's.
        streams = [
            llmsse.aiter_sse(
                source(n, interval, (stamps if i == 0 else []) if stamped else None),
                ids=True,
                heartbeat=None,
            )
            for i in range(readers)
        ]
    else:
        assert store is not None
        stream_id = await astart_stream(
            source(n, interval, stamps if stamped else None), store=store, expire=120.0
        )
        streams = [aresume_sse(stream_id, store=store, heartbeat=None) for _ in range(readers)]
    bodies = await asyncio.wait_for(
        asyncio.gather(*(read(s, arrivals[i] if stamped else None) for i, s in enumerate(streams))),
        TIMEOUT,
    )
    elapsed = time.perf_counter() - start
    for body in bodies:
        try:
            check(body, n, stamped)
        except AssertionError as error:
            raise AssertionError(f"{kind}, {readers} readers: {error}") from None
    result: dict[str, Any] = {"seconds": elapsed, "events_per_s": n / elapsed}
    if stamped:
        # Plain readers each had their own source; only reader 0's stamps are comparable.
        pairs = range(1) if kind == "plain" else range(readers)
        latencies = [
            (arrivals[r][i] - stamps[i]) / 1e6 for r in pairs for i in range(n)
        ]  # event i of reader r (the done event, last, is not timed)
        result["latency_ms"] = {
            "median": statistics.median(latencies),
            "p95": _percentile(latencies, 95),
            "max": max(latencies),
        }
    return result


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


# ======================================================================================
# Sections
# ======================================================================================


def _rounds(rounds: int, budget: float) -> Iterator[int]:
    start = time.monotonic()
    for index in range(rounds):
        if index and time.monotonic() - start > budget:
            return
        yield index


async def section_flow(
    url: str,
    n: int,
    reader_counts: list[int],
    rounds: int,
    budget: float,
    interval: float,
    stamped: bool,
) -> dict[str, Any]:
    memory = MemoryStore()
    redis = RedisStore(url=url, prefix="bench")
    stores: dict[str, Store | None] = {"plain": None, "memory": memory, "redis": redis}
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {
        str(count): {name: [] for name in CONTENDERS} for count in reader_counts
    }
    try:
        for name in CONTENDERS:  # warm-up: connections, scripts, first-call costs
            await run_once(name, stores[name], min(n, 200), 2, 0.0, stamped)
        for index in _rounds(rounds, budget):
            for count in reader_counts:
                order = CONTENDERS[index % 3 :] + CONTENDERS[: index % 3]
                for name in order:
                    gc.collect()
                    sample = await run_once(name, stores[name], n, count, interval, stamped)
                    samples[str(count)][name].append(sample)
    finally:
        await redis.aclose()
    return {"samples": samples, "summary": _summarize(samples, stamped)}


def _summarize(
    samples: dict[str, dict[str, list[dict[str, Any]]]], stamped: bool
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for count, by_name in samples.items():
        rows: dict[str, Any] = {}
        for name, runs in by_name.items():
            row: dict[str, Any] = {
                "events_per_s": statistics.median(r["events_per_s"] for r in runs),
                "vs_plain": statistics.median(
                    r["events_per_s"] / p["events_per_s"]
                    for r, p in zip(runs, by_name["plain"], strict=False)
                ),
                "rounds": len(runs),
            }
            if stamped:
                row["latency_median_ms"] = statistics.median(
                    r["latency_ms"]["median"] for r in runs
                )
                row["latency_p95_ms"] = statistics.median(r["latency_ms"]["p95"] for r in runs)
                row["added_median_ms"] = statistics.median(
                    r["latency_ms"]["median"] - p["latency_ms"]["median"]
                    for r, p in zip(runs, by_name["plain"], strict=False)
                )
            rows[name] = row
        summary[count] = rows
    return summary


def rss_kb() -> int:
    with open("/proc/self/status", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def idle_child(kind: str, url: str, count: int) -> dict[str, Any]:
    """In a fresh process: open ``count`` idle streams with a waiting reader each."""
    store: Store = MemoryStore() if kind == "memory" else RedisStore(url=url, prefix="idle")
    forever = asyncio.Event()

    async def quiet() -> AsyncIterator[str]:
        yield "hello"
        await forever.wait()

    async def follow(stream_id: str, got: asyncio.Event) -> None:
        async for _ in aresume_sse(stream_id, store=store, heartbeat=15.0):
            got.set()

    async def one(tag: str) -> tuple[asyncio.Task[None], asyncio.Event]:
        stream_id = await astart_stream(quiet(), store=store, stream_id=tag, expire=1.0)
        got = asyncio.Event()
        return asyncio.create_task(follow(stream_id, got)), got

    async def used_memory() -> int:
        if not isinstance(store, RedisStore):
            return 0
        client = redis.asyncio.Redis.from_url(url)
        try:
            return int((await client.info("memory"))["used_memory"])
        finally:
            await client.aclose()

    # Warm-up: the first streams pay for imports, scripts and the pub/sub connection.
    warm = [await one(f"warm-{i}") for i in range(5)]
    await asyncio.gather(*(got.wait() for _, got in warm))
    await asyncio.sleep(0.3)
    gc.collect()
    before, used_before = rss_kb(), await used_memory()
    opened = [await one(f"s-{i}") for i in range(count)]
    await asyncio.wait_for(asyncio.gather(*(got.wait() for _, got in opened)), TIMEOUT)
    await asyncio.sleep(0.5)  # every reader is now blocked in its next read
    gc.collect()
    after, used_after = rss_kb(), await used_memory()
    result: dict[str, Any] = {
        "rss_kb_per_stream": (after - before) / count,
        "rss_kb_before": before,
    }
    if isinstance(store, RedisStore):
        # Keys, stream entries, and one client connection per waiting reader.
        result["server_bytes_per_stream"] = (used_after - used_before) / count
    forever.set()
    for task, _ in warm + opened:
        task.cancel()
    await asyncio.gather(*(task for task, _ in warm + opened), return_exceptions=True)
    await store.aclose()
    return result


def section_idle(server: RedisServer, count: int, rounds: int, budget: float) -> dict[str, Any]:
    samples: dict[str, list[dict[str, Any]]] = {"memory": [], "redis": []}
    for index in _rounds(rounds, budget):
        for kind in ["memory", "redis"] if index % 2 == 0 else ["redis", "memory"]:
            server.command("FLUSHALL")
            child = subprocess.Popen(
                [sys.executable, __file__, "--idle-child", kind, "--url", server.url,
                 "--idle", str(count)],
                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            try:
                out, _ = child.communicate(timeout=TIMEOUT)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait(timeout=10)
            if child.returncode != 0:
                raise RuntimeError(f"the idle child ({kind}) failed with {child.returncode}")
            sample = json.loads(out.strip().splitlines()[-1])
            samples[kind].append(sample)
    summary = {
        kind: {
            "rss_kb_per_stream": statistics.median(s["rss_kb_per_stream"] for s in runs),
            **(
                {
                    "server_kb_per_stream": statistics.median(
                        s["server_bytes_per_stream"] / 1024 for s in runs
                    )
                }
                if kind == "redis"
                else {}
            ),
            "rounds": len(runs),
        }
        for kind, runs in samples.items()
    }
    return {"samples": samples, "summary": summary, "streams": count}


# ======================================================================================
# Report
# ======================================================================================


def report(results: dict[str, Any], readers: int) -> None:
    for section in ("rate", "latency"):
        if section not in results:
            continue
        print(f"\n[{section}]")
        header = f"  {'contender':<10} {'readers':>7} {'events/s':>11} {'vs plain':>9}"
        if section == "latency":
            header += f" {'median ms':>10} {'p95 ms':>8} {'added ms':>9}"
        print(header)
        for count, rows in results[section]["summary"].items():
            for name, row in rows.items():
                line = (
                    f"  {name:<10} {count:>7} {row['events_per_s']:>11,.0f} "
                    f"{row['vs_plain']:>8.2f}x"
                )
                if section == "latency":
                    line += (
                        f" {row['latency_median_ms']:>10.3f} {row['latency_p95_ms']:>8.3f}"
                        f" {row['added_median_ms']:>9.3f}"
                    )
                print(line)
    if "idle" in results:
        idle = results["idle"]
        print(f"\n[idle] {idle['streams']} open streams, one waiting reader each")
        for kind, row in idle["summary"].items():
            extra = ""
            if "server_kb_per_stream" in row:
                extra = f", redis-server +{row['server_kb_per_stream']:.1f} KB"
            print(f"  {kind:<10} process +{row['rss_kb_per_stream']:.1f} KB per stream{extra}")


def facts() -> dict[str, Any]:
    f = machine_facts()
    for dist in ("redis", "uvicorn", "anyio"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            f["packages"][dist] = metadata.version(dist)
    path = _which("redis-server")
    if path:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            f["redis_server"] = subprocess.run(
                [path, "--version"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
    return f


def _pin(cpu: int) -> Callable[[], None]:
    def pin() -> None:
        if (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, {cpu})

    return pin


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--idle-child", choices=["memory", "redis"], help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="a ~20-30 s smoke run")
    ap.add_argument("--sections", default="rate,latency,idle", help="a subset, comma-separated")
    ap.add_argument("--events", type=int, help="events in the rate stream (default 20000)")
    ap.add_argument("--readers", type=int, help="the N of 'N readers' (default 10)")
    ap.add_argument("--paced", type=int, help="events in the latency stream (default 300)")
    ap.add_argument("--interval", type=float, default=0.005, help="latency: seconds per event")
    ap.add_argument("--idle", type=int, help="open streams in the idle section (default 300)")
    ap.add_argument("--rounds", type=int, help="rounds per section (default 5; idle 2)")
    ap.add_argument(
        "--budget", type=float, help="seconds after which a section stops adding rounds"
    )
    ap.add_argument("--json", metavar="PATH", help="write raw samples and machine facts here")
    args = ap.parse_args(argv)

    if args.idle_child:
        result = asyncio.run(idle_child(args.idle_child, args.url, args.idle))
        print(json.dumps(result))
        return 0

    q = args.quick
    events = args.events or (2_000 if q else 20_000)
    readers = args.readers or 10
    paced = args.paced or (60 if q else 300)
    idle = args.idle or (40 if q else 300)
    rounds = args.rounds or (2 if q else 5)
    idle_rounds = args.rounds or (1 if q else 2)
    budget = args.budget or (10.0 if q else 60.0)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]

    several = (os.cpu_count() or 1) >= 2
    _pin(0)()
    f = facts()
    print(
        f"llmsse resumable benchmark: Python {f['python']}, {f['cpu_count']} CPUs "
        f"({f['cpu_model']}), {f.get('redis_server', 'redis-server ?')}"
        + ("; this process on CPU 0, redis-server on CPU 1" if several else "")
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server = RedisServer(1 if several else None)
    results: dict[str, Any] = {}
    t_start = time.monotonic()
    try:
        if "rate" in sections:
            print(f"[rate] {events:,} events, 1 and {readers} readers, {rounds} rounds ...")
            results["rate"] = asyncio.run(
                section_flow(server.url, events, [1, readers], rounds, budget, 0.0, False)
            )
        if "latency" in sections:
            print(f"[latency] {paced} events every {args.interval * 1000:g} ms ...")
            results["latency"] = asyncio.run(
                section_flow(server.url, paced, [1, readers], rounds, budget, args.interval, True)
            )
        if "idle" in sections:
            print(f"[idle] {idle} streams, {idle_rounds} rounds ...")
            results["idle"] = section_idle(server, idle, idle_rounds, budget)
    finally:
        server.stop()
    elapsed = time.monotonic() - t_start
    report(results, readers)
    print(f"\n(total run time {elapsed:.0f} s)")
    if args.json:
        out = {
            "benchmark": "bench_resumable",
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f,
            "config": {
                "quick": q,
                "sections": sections,
                "events": events,
                "readers": readers,
                "paced": paced,
                "interval": args.interval,
                "idle": idle,
                "rounds": rounds,
                "idle_rounds": idle_rounds,
                "pinned": several,
                "run_seconds": elapsed,
            },
            "results": results,
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)
            fh.write("\n")
        print(f"raw results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
