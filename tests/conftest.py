"""Shared fixtures: a migrated database (SQLite by default, PostgreSQL when
CHEQPOINT_TEST_POSTGRES_URL is set), settings, a controllable clock, and the app."""

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

import api.models  # noqa: F401
from api.config import Settings
from api.db import Base, Database
from api.main import Container, build_container, create_app, running
from api.migrate import upgrade

PG_URL = os.environ.get("CHEQPOINT_TEST_POSTGRES_URL")
# Who may decide in tests that do not name approvers themselves (decisions are checked against them).
TEST_APPROVERS = ["UOPS", "UALICE", "UBOB", "UCAROL", "U012ABCDEF", *(f"UVOTER{i}" for i in range(8))]
VENDOR = Path(__file__).resolve().parents[2] / "shared" / "vendor"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs CHEQPOINT_TEST_POSTGRES_URL (a PostgreSQL database)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PG_URL:
        return
    skip = pytest.mark.skip(reason="PostgreSQL-only: set CHEQPOINT_TEST_POSTGRES_URL (.ci/run does)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


class Clock:
    """An injected clock that tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


async def _migrate(url: str) -> None:
    db = Database(url)
    try:
        await upgrade(db.engine)
    finally:
        await db.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating every time would be slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


async def _fresh_schema(url: str) -> None:
    """The test database may hold an older run's schema: start from nothing, then migrate."""
    db = Database(url)
    try:
        async with db.engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    finally:
        await db.close()
    await _migrate(url)


@pytest.fixture(scope="session")
def postgres_migrated() -> str | None:
    if not PG_URL:
        return None
    asyncio.run(_fresh_schema(PG_URL))
    return PG_URL


async def _truncate(url: str) -> None:
    db = Database(url)
    try:
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with db.engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await db.close()


@pytest.fixture
def database_url(tmp_path: Path, sqlite_template: Path, postgres_migrated: str | None) -> str:
    if postgres_migrated:
        asyncio.run(_truncate(postgres_migrated))
        return postgres_migrated
    path = tmp_path / "cheqpoint.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    def build(**values: Any) -> Settings:
        values.setdefault("database_url", database_url)
        values.setdefault("callback_allow_private", True)
        values.setdefault("approvers", TEST_APPROVERS)
        return Settings(_env_file=None, **values)

    return build


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def container(settings: Settings, clock: Clock) -> AsyncIterator[Container]:
    """The whole service, with its worker stopped: tests run jobs with `container.worker.drain()`."""
    built = build_container(settings, clock=clock)
    async with running(built, worker=False):
        yield built


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container.settings, container=container)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cheqpoint.test") as http:
        yield http


@pytest.fixture
async def connection(container: Container) -> dict[str, str]:
    from api.connections import service

    created = await container.db.write(lambda session: service.create(session, "support-agent"))
    return {"id": created.connection.id, "key": created.key, "secret": created.connection.webhook_secret}


@pytest.fixture
def auth(connection: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {connection['key']}"}


REFUND = {
    "action": "issue_refund",
    "summary": "Refund duplicate charge ch_3NxYz for $349.00",
    "details": {"charge_id": "ch_3NxYzAbCdEfGhIjK", "amount_cents": 34900, "currency": "usd",
                "reason": "duplicate", "customer_id": "cus_QaAbCdEfGhIjK"},
    "justification": "Customer provided proof of duplicate charge within dispute window.",
}
