"""Stored approvals read back as the requests they were, for `cheqpoint policy replay`.

Each request is rebuilt as intake saw it: the details the agent sent (not a reviewer's edits), its
request fields, its Connection, `now` = its `created_at`, and the velocity totals as they stood at
that moment (see `usage.py`). What the policy decided then is read from how the approval was
decided: a rule's decision is recorded in `decided_by`; anything else went to people.
"""

from collections.abc import AsyncIterator, Callable
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from api.approvals.enums import ApprovalStatus, ExecutionStatus, PolicyVerdict
from api.approvals.models import Approval
from api.connections.models import Connection
from api.facts.names import stripe_variable
from api.policy.engine import Policy, PolicyInput
from api.policy.replay import ReplayReport
from api.policy.totals import empty_totals
from api.policy.usage import compute_totals

BATCH = 500


def stored_outcome(approval: Approval) -> PolicyVerdict:
    """pass, approve, reject or review: what the policy decided when the request came in."""
    if (approval.decided_by or {}).get("type") != "rule":
        return PolicyVerdict.REVIEW  # pending, decided by people, expired or cancelled: it was sent to review
    if approval.status == ApprovalStatus.REJECTED:
        return PolicyVerdict.REJECT
    # Intake runs a `pass` lookup at once (so its execution has a result) and never executes it
    # afterwards; an `approve` either queues an execution or, when the caller acts, runs nothing.
    if not approval.execute and approval.execution_status != ExecutionStatus.NOT_REQUESTED:
        return PolicyVerdict.PASS
    return PolicyVerdict.APPROVE


async def as_policy_input(session: AsyncSession, approval: Approval, connection: Connection,
                          *, with_totals: bool) -> PolicyInput:
    now = approval.created_at
    totals = empty_totals()
    if with_totals:
        totals = await compute_totals(session, connection, approval.action, approval.details, now,
                                      replaying=approval.id)
    return PolicyInput(
        action=approval.action, details=approval.details, now=now,
        request={"riskLevel": approval.risk_level, "priority": approval.priority, "agentName": approval.agent_name,
                 "metadata": approval.request_metadata or {}},
        connection={"id": connection.id, "name": connection.name}, totals=totals,
        # The facts recorded at intake, not today's Stripe: a charge refunded since must not
        # change what the policy would have decided then.
        stripe=stripe_variable(approval.stripe_facts))


async def _created_since(session: AsyncSession, since: datetime) -> AsyncIterator[Approval]:
    """Oldest first, a batch at a time (keyset on created_at, id) so a long history stays small in memory.

    Replay reads how each approval was decided from the approval itself (`decided_by`, `rule`), never
    its reviewers' votes: the votes are not loaded, and reaching for them raises instead of querying.
    """
    query = (select(Approval).where(Approval.created_at >= since).options(raiseload(Approval.decisions))
             .order_by(Approval.created_at, Approval.id).limit(BATCH))
    after: tuple[datetime, str] | None = None
    while True:
        page = query if after is None else query.where(or_(
            Approval.created_at > after[0], and_(Approval.created_at == after[0], Approval.id > after[1])))
        rows = list((await session.scalars(page)).all())
        for approval in rows:
            yield approval
        if len(rows) < BATCH:
            return
        after = (rows[-1].created_at, rows[-1].id)
        session.expunge_all()


async def replay_stored(session: AsyncSession, policy: Policy, since: datetime,
                        progress: Callable[[], None] | None = None) -> ReplayReport:
    """What `policy` would have decided on every request created since `since`; `progress()` after each."""
    report = ReplayReport.start(policy)
    async for approval in _created_since(session, since):
        connection = await session.get(Connection, approval.connection_id)
        assert connection is not None  # a foreign key
        request = await as_policy_input(session, approval, connection, with_totals=policy.reads_totals)
        report.add(approval.id, approval.action, policy.evaluate(request), stored_outcome(approval), approval.rule)
        if progress is not None:
            progress()
    return report
