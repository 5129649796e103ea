"""One HTTP connection pool for every Web API client of a process.

slack_sdk's async client without a session opens a new aiohttp session, and so a new TCP (and TLS)
connection to Slack, for every call and closes it after: per review message that was a connect,
a handshake and a teardown, a few per cent of the event loop's time when posting at full speed. The
clients here share one session, kept alive between calls; the surface closes it at shutdown.
"""

import asyncio

import aiohttp


class SlackConnections:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def session(self) -> aiohttp.ClientSession:
        """The running loop's session, opened on first use (a session belongs to the loop it was
        opened on: an app served again on a new loop opens its own)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            # As slack_sdk opens its own per call: the client's timeout, no proxy from the environment.
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._loop = loop
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None
