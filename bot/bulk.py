"""Bulk approval of a digest's group: what a click covers, and the job that decides each item.

"Approve all" never decides anything as a group: each covered request gets its own decision by the
person who clicked, through `Decisions.decide` (who may decide, the revision shown, quorum, audit),
exactly as if they had clicked its own Approve. A click names the digest's render it saw; it covers
only requests that render showed, still pending and still at the revision shown.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from api.approvals.actors import Actor
from api.approvals.authority import NotAnApprover
from api.approvals.enums import Verdict
from api.db import Database
from api.outbox.registry import JobContext, JobRegistry
from api.policy import Policy
from bot import render
from bot.blocks.digest import bulk_line
from bot.digest_render import age_text, bulk_covers, load_items
from bot.ids import DigestRef
from bot.kinds import SlackJob

log = logging.getLogger(__name__)

BULK_APPROVE = SlackJob.BULK_APPROVE


@dataclass(frozen=True)
class Covered:
    items: list[tuple[render.Snapshot, int]]  # each request and the revision the click saw

    @property
    def snapshots(self) -> list[render.Snapshot]:
        return [snapshot for snapshot, _ in self.items]


async def covered_by(db: Database, policy: Policy, ref: DigestRef) -> Covered | None:
    """What a click on this render's "Approve all" covers now; None when the digest is unknown."""
    digest, items, snapshots = await load_items(db, ref.digest_id)
    if digest is None:
        return None
    seen = {item.approval_id: item.shown_revision for item in items
            if item.shown_generation is not None and item.shown_generation <= ref.generation}
    shown = [s for s in snapshots if s.pending and s.id in seen and seen[s.id] == s.revision]
    allowed = bulk_covers(policy, digest.action, digest.rule, shown) or []
    return Covered([(s, s.revision) for s in allowed])


def covered_lines(covered: Covered, now: Any) -> list[str]:
    return [bulk_line(s.data, age_text(s.row.created_at, now)) for s in covered.snapshots]


class BulkApprover:
    def __init__(self, client: AsyncWebClient, policy: Callable[[], Policy]) -> None:
        self.client = client
        self.policy = policy

    def register(self, registry: JobRegistry) -> None:
        registry.register(BULK_APPROVE, self.run)

    async def run(self, ctx: JobContext, payload: dict[str, Any]) -> None:
        """Decide each covered request as the person who clicked; a repeat finds them decided."""
        ref = DigestRef.model_validate(payload["ref"])
        actor = Actor("slack_user", payload["user"]["id"], payload["user"].get("name"))
        covered = await covered_by(ctx.db, self.policy(), ref)
        decisions = ctx.services.decisions
        counts: dict[str, int] = {}
        for snapshot, revision in covered.items if covered else []:
            try:
                result = await decisions.decide(snapshot.id, actor, Verdict.APPROVE, revision=revision)
                outcome = result.outcome
            except NotAnApprover:
                outcome = "refused"
            counts[outcome] = counts.get(outcome, 0) + 1
        await self.client.chat_postMessage(channel=actor.id, text=summary_text(counts, payload.get("count", 0)))

    @staticmethod
    def payload(ref: DigestRef, actor: Actor, count: int) -> dict[str, Any]:
        return {"ref": ref.model_dump(), "user": {"id": actor.id, "name": actor.name}, "count": count}


def summary_text(counts: dict[str, int], asked: int) -> str:
    done = counts.get("decided", 0) + counts.get("vote", 0)
    text = f"✅ Bulk approval: {done} of the {asked} request(s) you confirmed were approved, each as its own decision."
    if counts.get("vote"):
        text += f" {counts['vote']} of them need another approver's approval too."
    skipped = asked - done
    if skipped > 0:
        text += (f" {skipped} were left alone: decided by someone else, changed or edited since you looked, "
                 "or not yours to decide.")
    return text
