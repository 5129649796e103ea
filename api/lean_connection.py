"""Smaller stand-ins for the objects uvicorn keeps on every connection, for ten thousand held requests.

A held request is an open connection whose protocol object, request cycle and task wait, sometimes
for a minute; ten thousand of them are ten thousand of each. uvicorn gives every connection a flow
control `asyncio.Event` and a `deque` for pipelined requests, and every request another `Event`:
each `Event` carries a dictionary and a `deque` of waiters, each `deque` a 64-slot block, about
1.5 KB a connection between them that nearly never holds anything (`bench/hold_memory.py`).

`LeanEvent` does what uvicorn asks of an `Event` (`set`, `clear`, `is_set`, `wait`) and allocates its
list of waiters only when somebody waits. `Pipeline` is a list with the one `deque` method uvicorn
calls (`appendleft`; `pop` and truth are a list's own). Behaviour is the same: waiters are woken in
the order they came, `wait()` returns True, a cancelled waiter is removed.
"""

import asyncio
from typing import Any


class LeanEvent:
    __slots__ = ("_value", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._value = value
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        if self._waiters:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(True)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            self._waiters.remove(waiter)


class Pipeline(list):  # type: ignore[type-arg]
    """uvicorn's queue of pipelined requests: appended on the left, popped on the right."""

    __slots__ = ()

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)


def lean_event_from(event: Any) -> LeanEvent | None:
    """A `LeanEvent` in the state of `event`, or None when it cannot stand in (somebody waits on it)."""
    if isinstance(event, LeanEvent):
        return None
    if getattr(event, "_waiters", None):  # a waiter already holds the original
        return None
    return LeanEvent(event.is_set())


__all__ = ["LeanEvent", "Pipeline", "lean_event_from"]
