"""The HTTP server around the app: limits, a deadline for slow clients, and a graceful stop.

uvicorn times out idle keep-alive connections but not a request that arrives slowly: headers sent a
byte every few seconds, or a body that never completes, would hold a connection (and a slot of
`limit_concurrency`) for ever. `SlowClientGuard` gives each request a deadline to arrive — its
headers within `header_timeout`, then its body within `body_timeout` — counted from when the
connection became ready for it, so trickling data does not extend it. A request that misses its
deadline is answered 408 (when nothing was answered yet) and its connection closed. Time spent by
the app itself (a hold of a synchronous request) is not counted.

On SIGTERM or SIGINT the server stops accepting, releases every hold so each held request is answered
with its approval's current state, waits up to the grace period for responses to finish, shuts the
app down (the worker returns its claimed jobs) and returns, so the process exits 0.
"""

import asyncio
import contextlib
import signal
import threading
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.config import Settings
from api.lean_connection import Pipeline, lean_event_from

try:  # uvicorn[standard] brings httptools, the faster parser; h11 is the pure-Python fallback
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - depends on the install
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\nconnection: close\r\n"
                     b"content-length: 24\r\n\r\nrequest was not received")


class SlowClientGuard:
    """Mixed into uvicorn's HTTP protocol classes: a deadline for each request to arrive."""

    # Slots, not the instance dict: three more keys in uvicorn's protocol's dict doubled its size, about
    # 1.5 KB on every connection (bench/hold_memory.py), and ten thousand holds are ten thousand connections.
    __slots__ = ("_cycle_at_arm", "_deadline", "_phase")

    header_timeout: float = 10.0
    body_timeout: float = 30.0

    # Attributes of uvicorn's protocol classes that this mixin relies on.
    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def _arm(self, seconds: float, phase: str) -> None:
        self._disarm()
        self._phase = phase
        self._cycle_at_arm = getattr(self, "cycle", None)
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
        self._deadline = None
        self._phase = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        _lighten_connection(self)
        self._arm(self.header_timeout, "headers")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        cycle = getattr(self, "cycle", None)
        if cycle is not None and cycle is not self._cycle_at_arm:
            _lighten_cycle(cycle)
        if self._phase == "headers" and cycle is not None and cycle is not self._cycle_at_arm:
            if cycle.more_body:
                self._arm(self.body_timeout, "body")
            else:
                self._disarm()
        elif self._phase == "body" and cycle is not None and not cycle.more_body:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing():
            self._arm(self.header_timeout, "headers")  # the next request on this keep-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = getattr(self, "cycle", None)
        # A response under way (the app answered before the body was in) is cut, not followed by a 408.
        answered = cycle is not None and cycle.response_started and not cycle.response_complete
        if not answered:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()


def _lighten_connection(protocol: Any) -> None:
    """Smaller stand-ins for the connection's flow-control event and pipeline (api/lean_connection.py)."""
    flow = getattr(protocol, "flow", None)
    event = lean_event_from(getattr(flow, "_is_writable_event", None)) if flow is not None else None
    if event is not None:
        flow._is_writable_event = event
    pipeline = getattr(protocol, "pipeline", None)
    if isinstance(pipeline, deque) and not pipeline:
        protocol.pipeline = Pipeline()


def _lighten_cycle(cycle: Any) -> None:
    # Called as the request's headers are parsed, before its task has run: nobody waits on the event
    # yet (lean_event_from keeps the original otherwise), and the stand-in starts in the same state.
    event = lean_event_from(getattr(cycle, "message_event", None))
    if event is not None:
        cycle.message_event = event


class GuardedH11Protocol(SlowClientGuard, H11Protocol):
    pass


if HttpToolsProtocol is not None:
    class GuardedHttpToolsProtocol(SlowClientGuard, HttpToolsProtocol):
        pass


def protocol_class(settings: Settings) -> type[SlowClientGuard]:
    base: type[SlowClientGuard] = GuardedHttpToolsProtocol if HttpToolsProtocol is not None else GuardedH11Protocol
    # A subclass per server, so two servers in one process (tests) keep their own timeouts.
    return type(base.__name__, (base,), {"header_timeout": settings.header_timeout_seconds,
                                          "body_timeout": settings.body_timeout_seconds})


def server_config(app: Any, settings: Settings, *, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port,
        http=protocol_class(settings),  # type: ignore[arg-type]
        limit_concurrency=settings.max_concurrency,
        timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,  # type: ignore[arg-type]
        log_config=None,  # logging is configured once, by api.logs
        access_log=False,  # api.logs.RequestContext writes the access line, without query strings
        server_header=False,
        proxy_headers=True,
    )


def raise_open_files(wanted: int) -> int:
    """Let the process open `wanted` files (at most the hard limit); the soft limit it now has.

    Each connection is a file: with the usual soft limit of 1,024, accepting would fail long before
    `limit_concurrency` (ten thousand held requests) is reached.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    return soft


def _libc() -> Any:
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, macOS): the allocator is left as it is
        return None


def limit_malloc_arenas(arenas: int = 2) -> None:
    """At most `arenas` glibc malloc arenas, unless MALLOC_ARENA_MAX says otherwise.

    glibc gives each thread that allocates its own arena, up to eight per core, and each keeps its
    freed memory: the database driver's threads (one per pooled connection) held megabytes of it
    apart from the event loop's. Two arenas suffice for one event loop and its helper threads. Must
    run before those threads start."""
    import os

    libc = _libc()
    if libc is not None and "MALLOC_ARENA_MAX" not in os.environ:
        with contextlib.suppress(AttributeError):
            libc.mallopt(-8, arenas)  # M_ARENA_MAX


def trim_malloc() -> None:
    """Give the allocator's free pages back to the system (glibc's malloc_trim): what start-up built
    and dropped (the migrations, the imports' temporaries) would otherwise stay resident."""
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(AttributeError):
            libc.malloc_trim(0)


class Server(uvicorn.Server):
    """uvicorn's server, which releases holds first when told to stop, and exits 0 on SIGTERM."""

    def __init__(self, config: uvicorn.Config, *, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_stop = on_stop
        # Every connection uvicorn may take, plus the database's, the log's and the outbound clients'.
        raise_open_files((config.limit_concurrency or 0) + 256)
        limit_malloc_arenas()

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)  # the app's lifespan froze start-up's objects (api/gc_tuning.py)
        trim_malloc()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # uvicorn re-raises the signal after its graceful stop, so the process would die of SIGTERM
        # (exit 143); a stop we asked for and completed is a success.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        self.on_stop()  # held requests answer now, with what they have
        await super().shutdown(sockets)


__all__ = ["Server", "SlowClientGuard", "raise_open_files", "server_config"]
