"""The servers the benchmarks compare, each run as its own process by `intake.py` and `run.py`.

`cheqpoint`: the real app, with bench-only routes that record a decision in-process, as a Slack
click arriving at /slack/events would, and report what only the server knows (release delays, holds,
jobs due). `baseline`: a bare FastAPI endpoint that parses the same body and does one naive
SQLAlchemy async insert per request. `nodb`: the same bare endpoint doing no database work at all,
the ceiling of the framework on this machine.
"""

import resource
import sys
import time
from typing import Any

import uvicorn

REVIEWER = "UBENCHREVIEWER"


def cheqpoint_app(database_url: str) -> Any:
    from api.approvals.actors import Actor
    from api.config import Settings
    from api.main import create_app

    # One Connection sends the whole load: the per-Connection limits are off, or they would be what is measured.
    # The bench's reviewer is the one approver, so its decisions pass the same authority check as a click.
    app = create_app(Settings(_env_file=None, database_url=database_url, limit_requests_per_minute=0,
                              limit_lookups_per_minute=0, limit_pending=0, limit_holds=0, approvers=[REVIEWER]))
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

    engine = create_async_engine(database_url)
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
    app = cheqpoint_app(database_url) if kind == "cheqpoint" else baseline_app(database_url,
                                                                                no_database=kind == "nodb")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096,
                # Longer than the benchmark's pauses, as behind a load balancer, so idle kept-alive
                # connections are not closed under the client.
                timeout_keep_alive=75)
