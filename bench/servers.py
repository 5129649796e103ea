"""The servers the benchmarks compare, each run as its own process by `intake.py` and `run.py`.

`cheqpoint`: the real app, with bench-only routes that record a decision in-process, as a Slack
click arriving at /slack/events would, and report what only the server knows (release delays, holds,
jobs due). `baseline`: a bare FastAPI endpoint that parses the same body and does one naive
SQLAlchemy async insert per request. `nodb`: the same bare endpoint doing no database work at all,
the ceiling of the framework on this machine.
"""

import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn

# This checkout's code, not the installed package's (an editable install points at another worktree).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REVIEWER = "UBENCHREVIEWER"


def cheqpoint_settings(database_url: str) -> Any:
    from api.config import Settings

    # One Connection sends the whole load: the per-Connection limits are off, or they would be what is measured.
    # The bench's reviewer is the one approver, so its decisions pass the same authority check as a click.
    # The server's own limits (concurrency, the database pool, keep-alive) are the product's defaults,
    # but for keep-alive: longer than the benchmark's pauses, as behind a load balancer, so idle
    # kept-alive connections are not closed under the client.
    return Settings(_env_file=None, database_url=database_url, limit_requests_per_minute=0,
                    limit_lookups_per_minute=0, limit_pending=0, limit_holds=0, approvers=[REVIEWER],
                    keep_alive_seconds=75)


def cheqpoint_app(database_url: str) -> Any:
    from api.approvals.actors import Actor
    from api.main import create_app

    app = create_app(cheqpoint_settings(database_url))
    container = app.state.container

    # Server-side release delay: from the decision's timestamp to the moment the hold lets go.
    releases: list[float] = []
    hold = container.approvals.hold

    async def timed_hold(*args: Any, **kwargs: Any) -> Any:
        approval = await hold(*args, **kwargs)
        if approval.decided_at is not None and approval.status != "pending":
            releases.append(time.time() - approval.decided_at.timestamp())
        return approval

    container.approvals.hold = timed_hold
    # The native API's holds answer with the rendered approval (waiters.py `hold_rendered`): a settled
    # approval is rendered as its hold lets go, so that is when its delay is taken.
    hold_rendered = container.waiters.hold_rendered

    async def timed_hold_rendered(approval_id: str, owner: Any, seconds: float, load: Any, render: Any) -> bytes:
        decided: list[float] = []

        def rendering(approval: Any) -> bytes:
            if approval.decided_at is not None and approval.status != "pending":
                decided.append(approval.decided_at.timestamp())
            return render(approval)

        body = await hold_rendered(approval_id, owner, seconds, load, rendering)
        if decided:
            releases.append(time.time() - decided[-1])
        return body

    container.waiters.hold_rendered = timed_hold_rendered

    @app.get("/bench/releases")
    async def release_delays() -> list[float]:
        return releases

    @app.post("/bench/decide/{approval_id}")
    async def decide(approval_id: str, verdict: str = "reject") -> dict[str, str]:
        result = await container.decisions.decide(approval_id, Actor("slack_user", REVIEWER, "Bench Reviewer"), verdict,
                                                  note="benchmark")
        return {"outcome": result.outcome}

    @app.get("/bench/state")
    async def bench_state() -> dict[str, int]:
        """Holds open now, and outbox jobs due but not finished (work left behind)."""
        from sqlalchemy import func, select

        from api.outbox.models import Job

        async with container.db.read() as session:
            due = await session.scalar(select(func.count()).select_from(Job).where(
                Job.status.in_(("queued", "running")), Job.run_at <= container.clock()))
            parked = await session.scalar(select(func.count()).select_from(Job).where(Job.status == "parked"))
        return {"held": container.waiters.held, "jobs_due": due or 0, "jobs_parked": parked or 0}

    @app.post("/bench/snapshot")
    async def snapshot(path: str) -> dict[str, int]:
        """A tracemalloc snapshot written to `path` (bench/hold_memory.py; CHEQPOINT_BENCH_TRACEMALLOC)."""
        import gc
        import tracemalloc

        gc.collect()
        taken = tracemalloc.take_snapshot()
        taken.dump(path)
        return {"traced": tracemalloc.get_traced_memory()[0]}

    return app


def baseline_app(database_url: str, *, no_database: bool = False) -> Any:
    from fastapi import FastAPI
    from sqlalchemy import JSON, Integer, String
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

    from api.approvals.schemas import ApprovalCreate

    class Base(DeclarativeBase):
        pass

    class Row(Base):
        __tablename__ = "bare_approvals"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        action: Mapped[str] = mapped_column(String(100))
        body: Mapped[dict[str, Any]] = mapped_column(JSON)

    # A writer waits for the lock as long as Cheqpoint's do (busy_timeout 30 s), instead of failing the
    # run with "database is locked" after the driver's default 5 s when the machine is loaded.
    engine = create_async_engine(database_url, connect_args={"timeout": 30})
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    app = FastAPI()

    @app.on_event("startup")
    async def create_table() -> None:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)

    @app.post("/v1/approvals", status_code=202)
    async def intake(body: ApprovalCreate) -> dict[str, Any]:
        if no_database:
            return {"id": 1, "status": "pending", "action": body.action}
        async with sessions() as session:
            row = Row(action=body.action, body=body.model_dump(mode="json"))
            session.add(row)
            await session.commit()
        return {"id": row.id, "status": "pending"}

    return app


if __name__ == "__main__":
    kind, database_url, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # ten thousand holds are ten thousand sockets
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if kind == "cheqpoint":
        # The product's server, as `cheqpoint serve` runs it: its protocol, concurrency limit and stop.
        from api.logs import configure_logging
        from api.serving import Server, server_config

        settings = cheqpoint_settings(database_url)
        configure_logging("console", "WARNING")  # no access line per request: uvicorn.run's level before
        app = cheqpoint_app(database_url)
        config = server_config(app, settings, host="127.0.0.1", port=port)
        config.backlog = 4096
        if os.environ.get("CHEQPOINT_BENCH_TRACEMALLOC"):  # frames kept per allocation: hold_memory.py
            import tracemalloc

            tracemalloc.start(int(os.environ["CHEQPOINT_BENCH_TRACEMALLOC"]))  # after the imports: quicker
        Server(config, on_stop=app.state.container.waiters.release_all).run()
    else:
        app = baseline_app(database_url, no_database=kind == "nodb")
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096, timeout_keep_alive=75)
