"""`cheqpoint cluster`: compose.yaml's topology without Docker, for development and tests.

On one PostgreSQL database it migrates, starts N API replicas (`serve --no-worker`) on ports of their
own, one `worker`, and a small TCP balancer on the public port that hands each new connection to the
next replica in turn — what the compose file's proxy does. SIGTERM or SIGINT stops the balancer,
sends SIGTERM to every child, waits for them (each stops gracefully) and exits 0 when all did.
"""

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, field

log = logging.getLogger("cheqpoint.cluster")

_CHUNK = 64 * 1024


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class Child:
    name: str
    args: list[str]
    process: asyncio.subprocess.Process | None = None


@dataclass
class Cluster:
    host: str
    port: int
    replicas: int
    children: list[Child] = field(default_factory=list)
    backends: list[tuple[str, int]] = field(default_factory=list)

    async def run(self) -> int:
        """Start everything, balance until told to stop, stop everything; the exit code."""
        for n in range(1, self.replicas + 1):
            port = free_port(self.host)
            self.backends.append((self.host, port))
            self.children.append(Child(f"api-{n}", ["serve", "--no-worker", "--host", self.host, "--port", str(port)]))
        self.children.append(Child("worker", ["worker"]))
        for child in self.children:
            child.process = await asyncio.create_subprocess_exec(sys.executable, "-m", "api.cli", *child.args,
                                                                 env=os.environ.copy())
        turn = itertools.cycle(self.backends)
        server = await asyncio.start_server(lambda r, w: self._balance(r, w, next(turn)), self.host, self.port)
        for child, backend in zip(self.children, [*self.backends, None], strict=True):
            where = f" http://{backend[0]}:{backend[1]}" if backend else ""
            print(f"cluster: {child.name} pid {child.process.pid}{where}", flush=True)  # type: ignore[union-attr]
        print(f"cluster: serving on http://{self.host}:{self.port}", flush=True)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        exited = asyncio.ensure_future(self._any_child_exits())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({exited, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        exited.cancel()
        server.close()
        codes = await self._stop_children()
        failed = {name: code for name, code in codes.items() if code != 0}
        if failed or not stop.is_set():
            print(f"cluster: stopped with failures: {failed or 'a process exited on its own'}", file=sys.stderr)
            return 1
        print("cluster: stopped", flush=True)
        return 0

    async def _any_child_exits(self) -> None:
        await asyncio.wait([asyncio.ensure_future(c.process.wait()) for c in self.children if c.process],
                           return_when=asyncio.FIRST_COMPLETED)

    async def _stop_children(self) -> dict[str, int]:
        for child in self.children:
            if child.process and child.process.returncode is None:
                child.process.send_signal(signal.SIGTERM)
        codes: dict[str, int] = {}
        for child in self.children:
            if child.process is None:
                continue
            try:
                codes[child.name] = await asyncio.wait_for(child.process.wait(), 30)
            except TimeoutError:
                child.process.kill()
                codes[child.name] = await child.process.wait()
        return codes

    async def _balance(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                       backend: tuple[str, int]) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*backend)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


__all__ = ["Cluster"]
