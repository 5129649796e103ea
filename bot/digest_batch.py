"""The digests' check (bot.digests `absorb`) for a batch of post jobs: one read and at most one
count for the lot, where each job asking alone took two statements (its row and lookups, then the
waiting count), most of a batch's round trips to the database thread once the snapshot, the store
and the finish were shared.

Only the common case is decided here: no request of the batch has an open digest for its group and
the waiting queue is within the threshold, so each posts its own message, as `absorb` would have
said to each. Anything else (an open digest, a queue past the threshold) goes through `absorb`'s
own steps, request by request, in the same transaction: the digests' rules stay in one place
(this module calls bot.digests' `_waiting` and `_absorb` for that, and must follow them).
"""

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


async def absorb_many(digests: Digests, ctx: JobContext, approval_ids: Sequence[str]) -> list[bool]:
    """`digests.absorb` for each request of a batch of first attempts, in order, in one transaction."""
    return list(await ctx.db.write(lambda session: _absorb_many(digests, session, list(approval_ids))))


async def _absorb_many(digests: Digests, session: AsyncSession, approval_ids: list[str]) -> list[bool]:
    rows: dict[str, Any] = {row.id: row for row in (await session.execute(_READ, {"ids": approval_ids})).all()}
    answers: dict[str, bool] = {}
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
        if all(row.open_digest is None for row in open_questions) and \
                await digests._waiting(session, up_to=threshold + 1) <= threshold:
            answers.update({row.id: False for row in open_questions})
        else:  # a digest is (or is about to be) at work: absorb's own steps, one request at a time
            for row in open_questions:
                answers[row.id] = await digests._absorb(session, row.id, 1)
    return [answers[approval_id] for approval_id in approval_ids]
