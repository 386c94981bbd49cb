#!/usr/bin/env python3
"""Load on one podlogd: many followers (half of them never reading), idle
connections and a writer, while a small read on another container is timed.

Usage:
    cargo build --release -p podlog-agent
    python3 bench/load.py [--followers 2000] [--idle 1000] [--seconds 20]

Loopback only, bounded in count and time; everything it starts and its
temporary directory are removed at the end. It prints a markdown table:
the latency of `tailLines=1` on another container idle and under load (and
the ratio), podlogd's thread count and RssAnon before and under load, the
followers connected and refused (maxFollowers is set to admit them all),
and the lines the reading followers received. Directory mode (no runtime); the rotation-under-load
figures are `cargo bench -p podlog-agent --bench rotation`.
"""

import argparse
import asyncio
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

PAD = "x" * 120


def ts():
    t = time.time_ns()
    sec, frac = divmod(t, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + ".%09dZ" % frac


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


async def http_get(port, target):
    """One GET on a fresh connection; (status, seconds)."""
    start = time.perf_counter()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await w.drain()
    data = await r.read()
    w.close()
    took = time.perf_counter() - start
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1") else 0
    return status, took


async def metric(port, name):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await w.drain()
    body = (await r.read()).decode(errors="replace")
    w.close()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


async def latency(port, target, n):
    times = []
    for _ in range(n):
        status, took = await http_get(port, target)
        if status == 200:
            times.append(took)
    times.sort()
    if not times:
        return float("nan"), float("nan")
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return statistics.median(times), p99


async def follower(port, target, reads, counter, stop):
    """A follow stream; counts the lines it receives (when it reads)."""
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        counter["status", status] = counter.get(("status", status), 0) + 1
        if status != 200:
            w.close()
            return
        if not reads:
            await stop.wait()
            w.close()
            return
        while not stop.is_set():
            chunk = await r.read(65536)
            if not chunk:
                break
            counter["lines"] = counter.get("lines", 0) + chunk.count(b"more ")
        w.close()
    except (OSError, asyncio.IncompleteReadError, ValueError):
        counter["failed"] = counter.get("failed", 0) + 1


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--podlogd", default="target/release/podlogd")
    ap.add_argument("--followers", type=int, default=2000)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=int, default=1000, help="lines per second written")
    a = ap.parse_args()
    if not os.access(a.podlogd, os.X_OK):
        sys.exit(f"load: {a.podlogd} is not built (cargo build --release -p podlog-agent)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.followers + a.idle + 512
    if hard < need:
        sys.exit(f"load: the descriptor limit {hard} is below the {need} this run needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))

    tmp = tempfile.mkdtemp(prefix="podlog-load.")
    proc = None
    try:
        root = os.path.join(tmp, "pods")
        busy = os.path.join(root, "default_busy_uid1", "app")
        quiet = os.path.join(root, "default_quiet_uid2", "app")
        os.makedirs(busy)
        os.makedirs(quiet)
        with open(os.path.join(quiet, "0.log"), "w") as f:
            for i in range(1000):
                f.write(f"{ts()} stdout F quiet {i} {PAD}\n")
        with open(os.path.join(busy, "0.log"), "w") as f:
            f.write(f"{ts()} stdout F start {PAD}\n")
        cfg = os.path.join(tmp, "podlogd.yaml")
        with open(cfg, "w") as f:
            f.write(
                f"maxConnections: {a.followers + a.idle + 200}\n"
                f"maxFollowers: {a.followers}\nheaderTimeout: 10m\nsendTimeout: 10m\n"
            )
        out = open(os.path.join(tmp, "stdout"), "w+")
        err = open(os.path.join(tmp, "stderr"), "w")
        proc = subprocess.Popen(
            [a.podlogd, "--log-root", root, "--listen", "127.0.0.1:0",
             "--cri-endpoint", "none", "--config", cfg],
            stdout=out, stderr=err, env={**os.environ, "PODLOG_LOG": "warn"})
        port = None
        for _ in range(200):
            out.seek(0)
            line = out.readline()
            if line.startswith("podlogd listening on "):
                port = int(line.rsplit(":", 1)[1])
                break
            await asyncio.sleep(0.05)
        if port is None:
            sys.exit("load: podlogd did not start")
        pid = proc.pid
        quiet_target = "/logs/default/quiet/app?tailLines=1"
        idle_p50, idle_p99 = await latency(port, quiet_target, 50)
        threads_before = proc_status(pid, "Threads")
        rss_before = proc_status(pid, "RssAnon")

        stop = asyncio.Event()
        counter = {}
        idle_conns = []
        for _ in range(a.idle):
            idle_conns.append(await asyncio.open_connection("127.0.0.1", port))
        tasks = [
            asyncio.create_task(follower(port, "/logs/default/busy/app?follow=true&tailLines=0",
                                         i % 2 == 0, counter, stop))
            for i in range(a.followers)
        ]

        async def writer():
            n = 0
            with open(os.path.join(busy, "0.log"), "a") as f:
                start = time.monotonic()
                while not stop.is_set():
                    due = start + n / a.rate
                    d = due - time.monotonic()
                    if d > 0:
                        await asyncio.sleep(d)
                    f.write(f"{ts()} stdout F more {n} {PAD}\n")
                    f.flush()
                    n += 1
            return n

        wtask = asyncio.create_task(writer())
        await asyncio.sleep(2)  # followers connect, the writer runs
        threads_peak, rss_peak = 0, 0
        loaded = []
        end = time.monotonic() + a.seconds
        while time.monotonic() < end:
            threads_peak = max(threads_peak, proc_status(pid, "Threads"))
            rss_peak = max(rss_peak, proc_status(pid, "RssAnon"))
            _, took = await http_get(port, quiet_target)
            loaded.append(took)
            await asyncio.sleep(0.1)
        followers = await metric(port, "podlog_followers")
        stop.set()
        written = await wtask
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, w in idle_conns:
            w.close()
        loaded.sort()
        load_p50 = statistics.median(loaded)
        load_p99 = loaded[min(len(loaded) - 1, int(len(loaded) * 0.99))]
        ok = counter.get(("status", 200), 0)
        refused = counter.get(("status", 429), 0)
        print(f"### Load: {a.followers} followers (half not reading), {a.idle} idle connections, "
              f"a writer at {a.rate} lines/s, {a.seconds:.0f} s\n")
        print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
              f"`python3 bench/load.py --followers {a.followers} --idle {a.idle} --seconds {a.seconds:.0f}`.\n")
        print("| Measurement | value |")
        print("| --- | --- |")
        print(f"| `tailLines=1` on another container, idle: p50 / p99 | {idle_p50 * 1e3:.2f} / {idle_p99 * 1e3:.2f} ms |")
        print(f"| the same under load: p50 / p99 (ratio of p50s) | {load_p50 * 1e3:.2f} / {load_p99 * 1e3:.2f} ms ({load_p50 / idle_p50:.1f}×) |")
        print(f"| podlogd threads: before / peak under load | {threads_before} / {threads_peak} |")
        print(f"| podlogd RssAnon: before / peak under load | {rss_before / 1024:.1f} / {rss_peak / 1024:.1f} MiB |")
        print(f"| followers answered 200 / 429 (maxFollowers) / failed | {ok} / {refused} / {a.followers - ok - refused} |")
        print(f"| podlog_followers under load | {followers:.0f} |")
        print(f"| lines written / received by the reading followers | {written} / {counter.get('lines', 0)} |")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
