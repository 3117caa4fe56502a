"""API benchmark: create and read 1,000 bridges with a port each, on both store backends.

For each backend (the embedded memory store persisted to a temp dir, and a real ZooKeeper started here) it
serves the API on loopback, then with one keep-alive HTTP client:
  create   POST /bridges + POST /bridges/{id}/ports, COUNT times  (2*COUNT requests)
  read     GET /bridges/{id} + GET /ports/{id}, COUNT times       (2*COUNT requests)
and prints requests/s and p50/p99 latency per phase. As a reference measured in the same run, it also times
the same creates and reads straight on the store (no HTTP, no JSON, no auth), so the API's own cost shows.

    .venv/bin/python benchmarks/api_bench.py [--count 1000] [--backends memory,zookeeper]

Figures go to docs/benchmarks.md (with the command and the machine). Cleans up everything it starts.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from midonet.api.auth import Authenticator, Role, User
from midonet.store.base import Create, Store
from midonet.store.factory import open_store
from midonet.testing.apiserver import ApiServer
from midonet.testing.zookeeper import ZooKeeperServer
from midonet.topology.devices import Bridge, Port
from midonet.topology.ids import new_id


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(n: int, op: Callable[[int], None]) -> tuple[float, list[float]]:
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        op(i)
        lat.append(time.perf_counter() - t0)
    return time.perf_counter() - start, lat


def report(backend: str, phase: str, requests: int, elapsed: float, lat: list[float]) -> None:
    print(f"| {backend:9} | {phase:22} | {requests:6} | {requests / elapsed:9.0f} | "
          f"{statistics.median(lat) * 1e3:8.2f} | {percentile(lat, 0.99) * 1e3:8.2f} |")


@contextmanager
def backend_store(name: str, tmp: Path) -> Iterator[Store]:
    if name == "memory":
        store = open_store("memory", owner="bench", data_dir=tmp / f"data-{uuid.uuid4().hex[:6]}")
        try:
            yield store
        finally:
            store.close()
    else:
        with ZooKeeperServer() as zk:
            store = open_store(f"zookeeper://{zk.hosts}/bench-{uuid.uuid4().hex[:8]}", owner="bench")
            try:
                yield store
            finally:
                store.close()


def bench_api(backend: str, count: int, tmp: Path) -> None:
    auth = Authenticator([User("a", "a", Role.ADMIN)])
    with backend_store(backend, tmp) as store, ApiServer(store, auth) as s, \
            httpx.Client(base_url=s.url, timeout=30) as http:
        token = http.post("/login", auth=("a", "a")).json()["key"]
        http.headers["X-Auth-Token"] = token
        bridges: list[str] = []
        ports: list[str] = []

        def create(i: int) -> None:
            r = http.post("/bridges", json={"name": f"b{i}", "tenantId": "bench"})
            bridges.append(r.headers["location"].rsplit("/", 1)[1])
            r = http.post(f"/bridges/{bridges[-1]}/ports", json={})
            ports.append(r.headers["location"].rsplit("/", 1)[1])

        elapsed, lat = timed(count, create)
        report(backend, "API create bridge+port", 2 * count, elapsed, [x / 2 for x in lat])

        def read(i: int) -> None:
            assert http.get(f"/bridges/{bridges[i]}").status_code == 200
            assert http.get(f"/ports/{ports[i]}").status_code == 200

        elapsed, lat = timed(count, read)
        report(backend, "API read bridge+port", 2 * count, elapsed, [x / 2 for x in lat])
        listed = http.get("/bridges")
        assert len(listed.json()) == count


def bench_store(backend: str, count: int, tmp: Path) -> None:
    with backend_store(backend, tmp) as store:
        ids: list[tuple[str, str]] = []

        def create(i: int) -> None:
            b = Bridge(id=new_id(), name=f"b{i}", tenant_id="bench")
            p = Port(id=new_id(), network_id=b.id)
            store.multi([Create(b)])
            store.multi([Create(p)])
            ids.append((b.id, p.id))

        elapsed, lat = timed(count, create)
        report(backend, "store create (ref)", 2 * count, elapsed, [x / 2 for x in lat])

        def read(i: int) -> None:
            store.get(Bridge, ids[i][0])
            store.get(Port, ids[i][1])

        elapsed, lat = timed(count, read)
        report(backend, "store read (ref)", 2 * count, elapsed, [x / 2 for x in lat])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--backends", default="memory,zookeeper")
    args = parser.parse_args()
    print(f"# api_bench: {args.count} bridges + {args.count} ports; {platform.node()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print("| backend   | phase                  | reqs   | req/s     | p50 ms   | p99 ms   |")
    print("|-----------|------------------------|--------|-----------|----------|----------|")
    with tempfile.TemporaryDirectory(prefix="midonet-bench-") as tmp:
        for backend in args.backends.split(","):
            bench_api(backend, args.count, Path(tmp))
            bench_store(backend, args.count, Path(tmp))


if __name__ == "__main__":
    main()
