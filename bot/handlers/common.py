"""What every listener shares: who clicked, what they may do, and how to answer them privately."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from api.approvals.actors import Actor
from api.approvals.enums import ApprovalStatus, Verdict
from api.audit import service as audit
from api.outbox.service import enqueue
from bot import layout
from bot.approvers import ApproverDirectory
from bot.ids import ButtonRef
from bot.notifier import UPDATE
from bot.render import Snapshot

if TYPE_CHECKING:
    from api.db import Database
    from api.main import Container


@dataclass
class Deps:
    """The services listeners call; `container` is the composition root's Container."""

    container: "Container"
    directory: ApproverDirectory

    @property
    def db(self) -> "Database":
        return self.container.db


def actor_of(body: dict[str, Any]) -> Actor:
    user = body.get("user") or {}
    return Actor("slack_user", user["id"], user.get("username") or user.get("name"))


def button_ref(body: dict[str, Any]) -> ButtonRef:
    return ButtonRef.loads((body.get("actions") or [{}])[0].get("value"))


def from_home(body: dict[str, Any]) -> bool:
    return (body.get("view") or {}).get("type") == "home"


async def tell(client: AsyncWebClient, body: dict[str, Any], text: str) -> None:
    """Only the person who clicked sees it: an ephemeral message where they clicked, or, from App
    Home (which has no channel), a message in the app's Messages tab."""
    user = actor_of(body).id
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    if channel:
        await client.chat_postEphemeral(channel=channel, user=user, text=text)
    else:
        await client.chat_postMessage(channel=user, text=text)


async def authorised(deps: Deps, client: AsyncWebClient | None, body: dict[str, Any], snapshot: Snapshot,
                     verdict: Verdict) -> bool:
    """True for someone who may decide this request now (the core's `may_decide`, as every surface
    asks it). Anyone else is refused: nothing is recorded, the audit trail keeps the attempt (who
    tried to move money matters as much as who did), and with a `client` they are told."""
    actor = actor_of(body)
    authorisation = await deps.container.authority.may_decide(actor.id, snapshot.row)
    if authorisation.allowed:
        return True
    await audit_refusal(deps, snapshot, actor, {"reason": "not an approver", "why": authorisation.reason,
                                                "verdict": verdict})
    if client is not None:
        await tell(client, body, refusal_text(deps, snapshot))
    return False


async def audit_refusal(deps: Deps, snapshot: Snapshot, actor: Actor, detail: dict[str, Any], *,
                        event: str = "decision.refused") -> None:
    """An attempt that changed nothing, kept in the audit trail with who made it."""
    async def record(session: AsyncSession) -> None:
        audit.record(session, event, approval_id=snapshot.id, connection_id=snapshot.row.connection_id,
                     actor=actor.as_dict(), detail=detail)

    await deps.db.write(record)


def refusal_text(deps: Deps, snapshot: Snapshot) -> str:
    who = " ".join(layout.mention(a) for a in deps.container.authority.approvers_for(snapshot.row))
    return f"⛔ Only approvers can decide this request ({who or 'none are configured'}). Nothing was recorded."


def stale_text(data: dict[str, Any]) -> str:
    """A click or form on an older revision: say so, and what the request is now."""
    lines = layout.change_lines(data.get("changes") or {}, data.get("details") or {})
    now = ("\n" + "\n".join(lines)) if lines else ""
    by = f" by {layout.actor(data['revisedBy'])}" if data.get("revisedBy") else ""
    return (f"🔄 This request changed{by} since you saw it, so nothing was recorded. Here is the current one "
            f"(revision {data.get('revision')}), and the message now shows it:{now}")


async def refuse_stale(deps: Deps, client: AsyncWebClient, body: dict[str, Any], snapshot: Snapshot,
                       seen: int, verdict: Verdict) -> None:
    """The click named an older revision: audit it, tell the person, bring the message up to date."""
    await audit_refusal(deps, snapshot, actor_of(body), {"reason": "stale revision", "seen": seen,
                                                         "current": snapshot.revision, "verdict": verdict})
    await tell(client, body, stale_text(snapshot.data))
    await refresh(deps, snapshot.id)


def already_text(data: dict[str, Any]) -> str:
    """Why a click came too late, naming who got there first."""
    status = data.get("status")
    if status == ApprovalStatus.EXPIRED:
        return "⌛ This request already expired; nothing was recorded."
    if status == ApprovalStatus.CANCELLED:
        return "🚫 The agent already cancelled this request; nothing was recorded."
    return f"This request was already {status} by {layout.actor(data.get('decidedBy'))}; nothing was recorded."


async def refresh(deps: Deps, approval_id: str) -> None:
    """Someone clicked an outdated message: bring it up to date."""
    await deps.db.write(lambda session: enqueue(session, UPDATE, {"approval_id": approval_id}))


def votes_text(data: dict[str, Any]) -> str:
    votes, required = len(data.get("approvals") or []), data.get("requiredApprovals") or 1
    return f"{votes} of {required} approvals so far"
