"""Holding synchronous requests until their approval settles.

A hold is released the moment the deciding code in this process calls `notify()`. Decisions made
elsewhere reach us two ways: on PostgreSQL, `LISTEN cheqpoint_settled` (the deciding transaction
sends `pg_notify`, delivered on commit); everywhere, a poller that asks the database every
`poll_seconds` which approvals changed, so a CLI decision on SQLite releases a hold within half a
second.

The poller reads the audit trail forward from the last entry it saw, not the held approvals: every
change of an approval's state writes an audit entry in the same transaction, and entries are numbered
(`seq`) under the chain's lock as their transaction commits, so numbers appear in commit order and an
entry numbered below one already seen is never committed later. Its cost follows the rate of changes,
not the number of holds: ten thousand idle holds cost the same query as one.

Because every change reaches `notify()` or the poller, a pending approval's answer, once loaded, stays
true until one of them names the approval: `hold_rendered` remembers it and answers a re-hold (the
agent's next `waitMs` read, every 60 s for each of ten thousand holds) without the database, and
its end too. How stale that answer can be is the poller's interval, as for a decision made elsewhere.
"""

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select

from api.approvals.enums import ApprovalStatus
from api.approvals.models import Approval
from api.audit.models import AuditEvent
from api.db import Database

log = logging.getLogger(__name__)

CHANNEL = "cheqpoint_settled"
POLL_PAGE = 1000  # audit entries read per query
# Pending answers remembered at most (`Waiters._pending`): a few hundred bytes each. Past it they are
# all forgotten and the holds load again, as they did before any was remembered.
MAX_REMEMBERED = 20_000
# Audit events after which an approval is never settled: the poller need not wake its holds for them
# (a request's own creation would otherwise reload each new hold once). Anything else wakes them.
NEVER_SETTLES = ("approval.created", "approval.vote", "approval.revised", "approval.verified", "execution.running")


def _wake(wakeup: "asyncio.Future[None]") -> None:
    if not wakeup.done():
        wakeup.set_result(None)


class Deadlines:
    """One loop timer for every hold's deadline, instead of a timer each.

    A timer handle of the event loop costs about 500 bytes (bench/hold_memory.py); a heap entry a
    quarter of that. The heap is ordered by deadline and the one timer is set for its earliest. A
    hold woken early leaves its entry behind (it wakes a finished future, harmlessly, at its time), so
    nothing is searched when ten thousand holds are released at once.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # ties broken by arrival, never by comparing futures
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, loop: asyncio.AbstractEventLoop, when: float, wakeup: "asyncio.Future[None]") -> None:
        if loop is not self._loop:  # a new event loop (a restarted app in one process): start afresh
            self.close()
            self._loop = loop
        heapq.heappush(self._heap, (when, next(self._order), wakeup))
        if self._timer is None or when < self._timer_at:
            self._schedule(when)

    def _schedule(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._fire)  # type: ignore[union-attr]

    def _fire(self) -> None:
        self._timer = None
        # The loop's clock resolution: a timer may run a hair before its time, as asyncio allows.
        now = self._loop.time() + 0.001  # type: ignore[union-attr]
        heap = self._heap
        while heap and heap[0][0] <= now:
            _wake(heapq.heappop(heap)[2])
        if heap:
            self._schedule(heap[0][0])

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._heap.clear()


class Waiters:
    def __init__(self, db: Database, *, poll_seconds: float = 0.25) -> None:
        self.db = db
        self.poll_seconds = poll_seconds
        # The holds waiting on each approval, one future each. A future and an entry in `_deadlines`
        # are all a waiting hold keeps here (no Event, no timeout context, no timer of its own): ten
        # thousand holds are ten thousand of them.
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        # A settled approval handed over by the code that settled it, so its holds skip a database read.
        self._handed: dict[str, Approval] = {}
        self._deadlines = Deadlines()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener = None
        # Set when the server stops: every hold answers at once with the approval as it stands.
        self._releasing = False
        # The highest audit `seq` the poller has handed on; None until it first reads the trail.
        self._seen_seq: int | None = None
        # Pending approvals' answers, kept after their holds end so that the agent's next hold needs
        # no database: approval id -> (its Connection, the JSON answer). Any change of the approval
        # (notify(), the poller's every entry naming it) forgets it. While a hold loads, its entry is
        # a token of that load: a change heard meanwhile removes the token and the load is not kept.
        self._pending: dict[str, tuple[str | None, bytes | object]] = {}
        # How many changes have been heard, of any approval: a request just created is remembered as
        # created only if none was heard while it was (`remember_created`).
        self.heard = 0

    async def hold(self, approval_id: str, seconds: float,
                   load: Callable[[], Awaitable[Approval]]) -> Approval:
        """Return the approval once settled, or as it stands when `seconds` have passed.

        The hold is registered before each load, so a decision committed in between still wakes it.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        wakeup = self._register(approval_id, loop)
        try:
            approval = await load()
            while True:
                if approval.is_settled or loop.time() >= deadline or self._releasing:
                    return approval
                del approval  # not kept while waiting: a thousand holds would keep a thousand rows
                self._deadlines.add(loop, deadline, wakeup)
                await wakeup
                # The next wake-up is registered before the old one goes, so the approval's handed
                # state (dropped with its last hold) stays for this read.
                woken, wakeup = wakeup, self._register(approval_id, loop)
                self._unregister(approval_id, woken)
                handed = self._handed.get(approval_id)
                approval = handed if handed is not None else await load()
        finally:
            self._unregister(approval_id, wakeup)

    async def hold_rendered(self, approval_id: str, owner: str | None, seconds: float,
                            load: Callable[[], Awaitable[Approval]],
                            render: Callable[[Approval], bytes]) -> bytes:
        """As `hold`, answering with the approval's JSON (`render`), and loading it only when nothing
        true is remembered about it: a pending approval loaded by `owner` and not changed since is
        answered, at the start and at the deadline, from `_pending` (the load is also the ownership
        check, so a remembered answer serves only the Connection whose load it was)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        wakeup = self._register(approval_id, loop)
        try:
            body = self._remembered(approval_id, owner)
            while True:
                if body is None:
                    handed = self._handed.get(approval_id)
                    approval = handed if handed is not None else await self._load_remembering(
                        approval_id, owner, load, render)
                    if approval.is_settled:
                        return render(approval)
                    body = self._remembered(approval_id, owner) or render(approval)
                    del approval  # not kept while waiting; the remembered answer is a fifth of it
                if loop.time() >= deadline or self._releasing:
                    return body
                self._deadlines.add(loop, deadline, wakeup)
                await wakeup
                woken, wakeup = wakeup, self._register(approval_id, loop)
                self._unregister(approval_id, woken)
                # Woken by its deadline, the answer remembered is still true; by a change, it is gone.
                body = self._remembered(approval_id, owner)
        finally:
            self._unregister(approval_id, wakeup)

    def _remembered(self, approval_id: str, owner: str | None) -> bytes | None:
        entry = self._pending.get(approval_id)
        if entry is None or entry[0] != owner or not isinstance(entry[1], bytes):
            return None
        return entry[1]

    async def _load_remembering(self, approval_id: str, owner: str | None,
                                load: Callable[[], Awaitable[Approval]],
                                render: Callable[[Approval], bytes]) -> Approval:
        token = object()
        if len(self._pending) >= MAX_REMEMBERED:
            self._pending.clear()
        self._pending[approval_id] = (owner, token)
        try:
            approval = await load()
        except BaseException:
            if self._pending.get(approval_id, (None, None))[1] is token:
                del self._pending[approval_id]
            raise
        entry = self._pending.get(approval_id)
        if entry is not None and entry[1] is token:
            # Nothing was heard of the approval since before the load began: what it read is current.
            if approval.status == ApprovalStatus.PENDING:
                self._pending[approval_id] = (owner, render(approval))
            else:
                del self._pending[approval_id]
        return approval

    def forget(self, approval_id: str) -> None:
        """The approval changed: its remembered answer, if any, is no longer true."""
        self.heard += 1
        self._pending.pop(approval_id, None)

    def remember_created(self, approval: Approval, owner: str | None, since: int,
                         render: Callable[[Approval], bytes]) -> None:
        """Remember a request just created, so that its hold starts without loading it again.

        `since` is `heard` taken before it was created. If nothing was heard since, any change made
        to it after its commit has not been heard yet, and will be (the poller reads every one), so
        what was created is its answer until then. Otherwise the hold loads, as it always did.
        """
        if self.heard == since and approval.status == ApprovalStatus.PENDING:
            if len(self._pending) >= MAX_REMEMBERED:
                self._pending.clear()
            self._pending[approval.id] = (owner, render(approval))

    def _register(self, approval_id: str, loop: asyncio.AbstractEventLoop) -> "asyncio.Future[None]":
        wakeup: asyncio.Future[None] = loop.create_future()
        if self._releasing:
            wakeup.set_result(None)
        self._waiting.setdefault(approval_id, []).append(wakeup)
        return wakeup

    def _unregister(self, approval_id: str, wakeup: "asyncio.Future[None]") -> None:
        waiting = self._waiting.get(approval_id)
        if waiting is None:
            return
        with contextlib.suppress(ValueError):
            waiting.remove(wakeup)
        if not waiting:
            del self._waiting[approval_id]
            self._handed.pop(approval_id, None)

    def notify(self, approval_id: str, settled: Approval | None = None) -> None:
        """Wake the holds on `approval_id`; `settled` is its final state, when the caller has it."""
        self.heard += 1
        self._pending.pop(approval_id, None)
        waiting = self._waiting.get(approval_id)
        if waiting:
            if settled is not None and settled.is_settled:
                self._handed[approval_id] = settled
            for wakeup in waiting:
                _wake(wakeup)

    def release_all(self) -> None:
        """Answer every hold now, and every later one at once (the server is stopping)."""
        self._releasing = True
        for waiting in self._waiting.values():
            for wakeup in waiting:
                _wake(wakeup)

    @property
    def held(self) -> int:
        return len(self._waiting)

    async def start(self) -> None:
        with contextlib.suppress(Exception):  # unreachable now: the poller takes its mark later
            async with self.db.read() as session:
                self._seen_seq = await session.scalar(select(func.max(AuditEvent.seq))) or 0
        self._tasks.append(asyncio.create_task(self._poll(), name="cheqpoint-waiters-poll"))
        if self.db.url.startswith("postgresql+asyncpg"):
            await self._listen()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def _listen(self) -> None:
        import asyncpg  # only on PostgreSQL with asyncpg

        url = self.db.engine.url.set(drivername="postgresql")
        try:
            self._listener = await asyncpg.connect(url.render_as_string(hide_password=False))
            await self._listener.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: self.notify(payload))
        except Exception as exc:  # the poller still releases holds, only later
            log.warning("LISTEN %s unavailable (%s); falling back to polling", CHANNEL, exc)
            self._listener = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self._poll_once()
            except Exception:
                log.exception("polling for settled approvals failed")

    async def _poll_once(self) -> None:
        """Wake the holds on every approval that changed since the last poll."""
        if not self._waiting and not self._pending:
            # Nobody holds and nothing is remembered: only move the mark forward (one index lookup).
            # A hold registered while the lookup ran loaded its approval at an unknown moment, so the
            # mark then stays put.
            async with self.db.read() as session:
                head = await session.scalar(select(func.max(AuditEvent.seq)))
            if not self._waiting and not self._pending:
                if (head or 0) != self._seen_seq:
                    self.heard += 1  # changes passed over unread: a request being created may be one
                self._seen_seq = head or 0
            return
        async with self.db.read() as session:
            if self._seen_seq is None:
                # No mark yet (the database was unreachable at start): take one and have every hold
                # reload once, after it, so a change committed before the mark is not missed.
                self._seen_seq = await session.scalar(select(func.max(AuditEvent.seq))) or 0
                self.heard += 1
                self._pending.clear()
                for approval_id in list(self._waiting):
                    self.notify(approval_id)
                return
            while True:
                rows = (await session.execute(
                    select(AuditEvent.seq, AuditEvent.approval_id, AuditEvent.event)
                    .where(AuditEvent.seq > self._seen_seq).order_by(AuditEvent.seq).limit(POLL_PAGE))).all()
                for seq, approval_id, kind in rows:
                    self._seen_seq = seq
                    if approval_id is None:
                        continue
                    if kind not in NEVER_SETTLES:
                        self.notify(approval_id)  # a hold reloads and goes on waiting if not settled
                    elif kind != "approval.created":  # every load, found after it, includes it
                        self.forget(approval_id)  # still pending, but its answer changed (a vote, …)
                if len(rows) < POLL_PAGE:
                    return
