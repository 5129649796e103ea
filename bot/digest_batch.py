"""The digests' check (bot.digests `absorb`) for a batch of post jobs: one read and at most one
count for the lot, where each job asking alone took two statements (its row and lookups, then the
waiting count), most of a batch's round trips to the database thread once the snapshot, the store
and the finish were shared.

Only the common case is decided here: no request of the batch has an open digest for its group and
the waiting queue is within the threshold, so each posts its own message, as `absorb` would have
said to each. Anything else (an open digest, a queue past the threshold) goes through `absorb`
itself, request by request, each in its own transaction as before: the digests' rules stay in one
place, and on PostgreSQL no transaction holds a whole batch's digest rows (two replicas doing that
in different orders deadlocked). The check reads and counts as `absorb` does (bot.digests'
`_waiting`), in a write so that on SQLite it sees every write committed before it.
"""

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.enums import ApprovalStatus
from api.approvals.models import Approval
from api.outbox.registry import JobContext
from bot.digests import Digests
from bot.models import Digest, DigestItem, SlackMessage

# `bot.digests._ABSORB_READ` for many requests: the lookups correlated to each row, not to one id.
_READ = select(
    Approval.id, Approval.status,
    exists().where(SlackMessage.approval_id == Approval.id).label("has_message"),
    exists().where(DigestItem.approval_id == Approval.id).label("listed"),
    select(Digest.id).where(Digest.open_key == Approval.connection_id + "|" + Approval.action + "|"
                            + func.coalesce(Approval.rule, "")).scalar_subquery().label("open_digest"),
).where(Approval.id.in_(bindparam("ids", expanding=True)))


async def absorb_many(digests: Digests, contexts: Sequence[JobContext], approval_ids: Sequence[str]) -> list[bool]:
    """`digests.absorb` for each request of a batch of first attempts (`contexts`: their jobs'), in order."""
    answers = await contexts[0].db.write(lambda session: _decided(digests, session, list(approval_ids)))
    undecided = [n for n, answer in enumerate(answers) if answer is None]
    if undecided:  # a digest is (or is about to be) at work: absorb's own steps, one request at a time
        taken = await asyncio.gather(*(digests.absorb(contexts[n], approval_ids[n]) for n in undecided))
        for n, answer in zip(undecided, taken, strict=True):
            answers[n] = answer
    return [bool(answer) for answer in answers]


async def _decided(digests: Digests, session: AsyncSession, approval_ids: list[str]) -> list[bool | None]:
    """What `absorb` would answer each, where the batch's one read and count decide it; None elsewhere."""
    rows: dict[str, Any] = {row.id: row for row in (await session.execute(_READ, {"ids": approval_ids})).all()}
    answers: dict[str, bool | None] = {}
    open_questions = []
    for approval_id in approval_ids:
        row = rows.get(approval_id)
        if row is None or row.status != ApprovalStatus.PENDING or row.has_message:
            answers[approval_id] = False  # nothing to show, or shown: the post job sees to it
        elif row.listed:
            answers[approval_id] = True
        else:
            open_questions.append(row)
    if open_questions:
        threshold = digests.settings.slack_digest_threshold
        alone = all(row.open_digest is None for row in open_questions) and \
            await digests._waiting(session, up_to=threshold + 1) <= threshold
        answers.update({row.id: False if alone else None for row in open_questions})
    return [answers[approval_id] for approval_id in approval_ids]
