"""`cheqpoint mcp`: the MCP server on stdio (CONTRACT §1), for agent runtimes that speak MCP.

It is a client of this service's API like any agent: it reads CHEQPOINT_URL and
CHEQPOINT_CONNECTION_KEY, and touches no database. stdout carries the protocol, so anything else
this command says goes to stderr.
"""

import asyncio
import contextlib
import logging
import sys

from api.cli import app, fail, load_settings


@app.command("mcp")
def mcp() -> None:
    """An MCP server on stdio (tools request_human_approval, get_approval_status) using a Connection Key."""
    try:
        from cheqpoint_client.mcp_server import serve_stdio
    except ImportError:
        fail("the MCP server needs the `mcp` extra: pip install 'cheqpoint-server[mcp]'", 2)

    settings = load_settings()
    if settings.connection_key is None or not settings.connection_key.get_secret_value():
        fail("CHEQPOINT_CONNECTION_KEY is not set: create one with `cheqpoint connections create --name NAME`", 2)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_stdio(settings.connection_key.get_secret_value(), settings.url))
