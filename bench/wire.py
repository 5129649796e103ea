"""A small HTTP/1.1 client on raw asyncio streams, for load that costs the load generator little.

A Python client built on httpx spends about as much CPU per request as the server it measures, and
on a two-core machine that CPU is taken from the server. This one writes pre-rendered requests and
reads responses by Content-Length, enough for the service's JSON answers; each `Conn` is one
kept-alive connection to 127.0.0.1.

`open_loop()` sends at a fixed rate whatever the server does (the schedule is not slowed by slow
answers), and times each request from the moment it was due, so a server that falls behind shows it
in its latencies rather than in a lower rate (no coordinated omission, as `wrk2` does it).
"""

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any


def render(method: str, path: str, headers: dict[str, str], body: Any = None) -> bytes:
    payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(payload)}"]
    if body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class Conn:
    """One kept-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> "Conn":
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def call(self, raw: bytes) -> tuple[int, Any]:
        status, body = await self.request(raw)
        return status, json.loads(body) if body else None

    def close(self) -> None:
        self.writer.close()


@dataclass
class OpenLoopResult:
    rate: float  # requests per second asked for
    sent: int
    latencies: list[float] = field(default_factory=list)  # seconds, from when each request was due
    errors: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0


async def open_loop(port: int, raw: bytes, rate: float, seconds: float, *, expect: tuple[int, ...] = (200, 202),
                    connections: int = 64) -> OpenLoopResult:
    """`rate` requests per second for `seconds`, on up to `connections` kept-alive connections."""
    total = int(rate * seconds)
    result = OpenLoopResult(rate=rate, sent=total)
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await Conn.open(port))
    began = time.perf_counter()

    async def one(due: float) -> None:
        conn = await idle.get()
        try:
            status, _ = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError) as exc:
            result.errors[type(exc).__name__] = result.errors.get(type(exc).__name__, 0) + 1
            idle.put_nowait(await Conn.open(port))
            return
        result.latencies.append(time.perf_counter() - due)
        if status not in expect:
            result.errors[str(status)] = result.errors.get(str(status), 0) + 1
        idle.put_nowait(conn)

    tasks = []
    for i in range(total):
        due = began + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - began
    while not idle.empty():
        idle.get_nowait().close()
    return result


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]
