"""`cheqpoint audit verify` and `cheqpoint audit export` (CONTRACT §9).

Exit codes: 0 intact · 1 the chain is broken (the first entry that does not verify is named) · 2 bad arguments.
"""

from datetime import datetime
from typing import Annotated

import typer

from api.audit import verify as chain
from api.cli import app, container, fail, run
from api.cli_policy import parse_since
from api.db import utcnow

audit_app = typer.Typer(help="The tamper-evident audit trail: verify it, export it.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")

BROKEN = 1


def parse_head(text: str) -> tuple[int, str]:
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or int(seq) < 1 or len(digest) != 64 or not all(
            c in "0123456789abcdef" for c in digest):
        fail(f"--expect-head takes SEQ:HASH as `audit verify` printed it, not {text!r}", 2)
    return int(seq), digest


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[str | None, typer.Option(
        help="SEQ:HASH of a head recorded earlier: it must still be there (catches removed last entries).")] = None,
) -> None:
    """Check the hash chain from the first entry; exit 0 when intact, 1 naming the first broken entry."""
    head = parse_head(expect_head) if expect_head is not None else None

    async def check() -> chain.Verification:
        async with container() as c:
            return await chain.verify(c.db, head)

    result = run(check())
    if result.first_break is not None:
        typer.echo(f"audit trail is broken: {result.first_break.describe()}", err=True)
        typer.echo(f"the {result.checked} entries before it verify", err=True)
        raise typer.Exit(BROKEN)
    typer.echo(f"audit trail intact: {result.checked} entries, head {result.head_seq} {result.head_hash}")


@audit_app.command("export")
def audit_export(
    since: Annotated[str | None, typer.Option(help="Only entries this recent: 30d, 12h or 90m.")] = None,
    format_: Annotated[str, typer.Option("--format", help="jsonl (one object a line) or csv.")] = "jsonl",
) -> None:
    """The audit trail in chain order, with each entry's hashes, for auditors."""
    if format_ not in ("jsonl", "csv"):
        fail(f"--format takes jsonl or csv, not {format_!r}", 2)
    start: datetime | None = utcnow() - parse_since(since) if since is not None else None

    async def export() -> None:
        async with container() as c:
            if format_ == "csv":
                typer.echo(chain.csv_header())
            async for entry in chain.entries(c.db, since=start):
                typer.echo(chain.csv_line(entry) if format_ == "csv" else chain.jsonl_line(entry))

    run(export())
