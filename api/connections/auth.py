"""The request dependency that turns `Authorization: Bearer cq_…` into a Connection."""

from fastapi import Request

from api.connections import service
from api.connections.models import Connection
from api.errors import Unauthorized


async def connection_for_key(request: Request, key: str | None) -> Connection:
    if not key:
        raise Unauthorized("a Connection Key is required")
    db = request.app.state.container.db
    async with db.read() as session:
        connection = await service.authenticate(session, key)
    if connection is None:
        raise Unauthorized("this Connection Key is not valid or has been revoked")
    return connection


async def bearer_connection(request: Request) -> Connection:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send the Connection Key as `Authorization: Bearer cq_…`")
    return await connection_for_key(request, key.strip())
