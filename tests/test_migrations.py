"""The Alembic migrations build exactly the schema the models describe, on either database."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from api.db import Base, Database


async def test_migrated_schema_matches_the_models(database_url):
    db = Database(database_url)
    try:
        async with db.engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    finally:
        await db.close()
    assert differences == []
