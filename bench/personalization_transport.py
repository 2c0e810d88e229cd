"""The gRPC transport's own CPU per unary call, by server model: grpc.aio
(what every cxloop service runs) and the synchronous server with a thread
pool, with whatever grpcio the interpreter has (ADR 0255). A bare method
answering 1,200 bytes (about a 10-item ``RecommendResponse``), the server
and a paced aio client each in their own process; CPU of the server process
from /proc, so usable on a busy machine. No project imports: run it with
another venv's python to compare grpcio releases.

    .venv/bin/python -m bench.personalization_transport [kinds] [rate] [seconds] [rounds]
    # kinds: comma list of aio, sync:<threads>; default aio,sync:8 500 8 2

Prints one JSON line per server and round."""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import socket
import sys
import time
from concurrent import futures
from typing import Any

import grpc
import grpc.aio

ANSWER = b"y" * 1200
METHOD = "/bench.Transport/Call"


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _handler(behaviour: Any) -> Any:
    return grpc.method_handlers_generic_handler(
        "bench.Transport", {"Call": grpc.unary_unary_rpc_method_handler(behaviour)}
    )


def _server(kind: str, port: int, ready: Any) -> None:
    if kind == "aio":

        async def run() -> None:
            async def call(request: bytes, context: Any) -> bytes:
                return ANSWER

            server = grpc.aio.server()
            server.add_generic_rpc_handlers((_handler(call),))
            server.add_insecure_port(f"127.0.0.1:{port}")
            await server.start()
            ready.set()
            await server.wait_for_termination()

        asyncio.run(run())
        return

    def call(request: bytes, context: Any) -> bytes:
        return ANSWER

    threads = int(kind.partition(":")[2] or 8)
    server = grpc.server(futures.ThreadPoolExecutor(threads))
    server.add_generic_rpc_handlers((_handler(call),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    ready.set()
    server.wait_for_termination()


def _client(target: str, rate: int, seconds: float, out: Any) -> None:
    async def run() -> None:
        lat: list[float] = []
        async with grpc.aio.insecure_channel(target) as ch:
            call = ch.unary_unary(METHOD)

            async def one() -> None:
                t = time.perf_counter()
                await call(b"x" * 120, timeout=5)
                lat.append((time.perf_counter() - t) * 1000)

            for _ in range(100):
                await one()
            lat.clear()
            start = time.perf_counter()
            tasks = []
            for i in range(int(rate * seconds)):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                tasks.append(asyncio.ensure_future(one()))
            await asyncio.gather(*tasks, return_exceptions=True)
        lat.sort()
        out.put((lat[len(lat) // 2], lat[int(len(lat) * 0.99)]))

    asyncio.run(run())


def measure(kind: str, rate: int, seconds: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ctx.Process(target=_server, args=(kind, port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(60):
            raise RuntimeError(f"{kind} server did not start")
        q = ctx.Queue()
        cpu0 = _cpu_seconds(server.pid or 0)
        client = ctx.Process(target=_client, args=(f"127.0.0.1:{port}", rate, seconds, q))
        client.start()
        p50, p99 = q.get(timeout=seconds * 10 + 60)
        client.join(30)
        used = _cpu_seconds(server.pid or 0) - cpu0
    finally:
        server.kill()
        server.join(10)
    return {
        "grpcio": grpc.__version__,
        "server": kind,
        "rate": rate,
        "server_cpu_ms_per_call": round(used * 1000 / (rate * seconds + 100), 3),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    args = sys.argv[1:]
    kinds = (args[0] if args else "aio,sync:8").split(",")
    rate = int(args[1]) if len(args) > 1 else 500
    seconds = float(args[2]) if len(args) > 2 else 8.0
    rounds = int(args[3]) if len(args) > 3 else 2
    for _ in range(rounds):
        for kind in kinds:  # alternated, so each round sees the same load
            print(json.dumps(measure(kind, rate, seconds)), flush=True)


if __name__ == "__main__":
    main()
