"""Shared by the callback tests: a callback body to sign and deliver, and a resolver answering from a table."""

import json
import socket

BODY = json.dumps({"type": "approval.approved", "data": {"approvalId": "apr_1"}}).encode()

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"

DNS = {
    "api.yourapp.com": [PUBLIC_V4, PUBLIC_V6],
    "localhost": ["127.0.0.1", "::1"],
    "intranet.corp": ["10.1.2.3"],
    "split.example": [PUBLIC_V4, "192.168.1.10"],
    "metadata.example": ["169.254.169.254"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "callbacks.test": ["127.0.0.1"],
}


class FakeResolver:
    """Answers from a table; unknown names fail as getaddrinfo does. Records what it was asked."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = DNS if table is None else table
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]
