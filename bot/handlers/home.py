"""App Home as the approver's own queue: what awaits *their* decision, oldest first, a page at a
time, filtered by Connection and action, with the buttons right there; and the latest decisions."""

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from api.approvals.authority import is_group
from api.approvals.decisions import current_votes
from api.approvals.enums import ApprovalStatus
from api.approvals.models import Approval
from bot import render
from bot.blocks import app_home
from bot.blocks.home import ANY, PAGE_NEXT, PAGE_PREVIOUS, HomeQueue
from bot.handlers.common import Deps
from bot.ids import ActionId
from bot.models import Claim

# How many waiting requests are looked at for one person's queue, and how many a page shows.
PENDING_SCANNED = 500
PAGE_SIZE = 10
RECENT_SHOWN = 15


@dataclass(frozen=True)
class HomeState:
    """Carried in the home view's private_metadata and the pager's buttons."""

    page: int = 0
    connection: str = ANY
    action: str = ANY

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, raw: object) -> "HomeState":
        try:
            data = json.loads(raw) if isinstance(raw, str) and raw else {}
            page, connection, action = data.get("page", 0), data.get("connection", ANY), data.get("action", ANY)
            if isinstance(page, int) and page >= 0 and isinstance(connection, str) and isinstance(action, str):
                return cls(page, connection[:40], action[:100])
        except (ValueError, AttributeError):
            pass
        return cls()  # a view this app did not write starts from the top


async def awaiting(deps: Deps, user_id: str) -> list[render.Snapshot]:
    """Pending requests this person may decide and has not approved yet (at the current revision)."""
    pending = await render.load_where(deps.db, Approval.status == ApprovalStatus.PENDING, order_by=Approval.created_at,
                                      limit=PENDING_SCANNED)
    authority = deps.container.authority
    mine = []
    for snapshot in pending:
        if any(vote.actor_id == user_id for vote in current_votes(snapshot.row)):
            continue
        if (await authority.may_decide(user_id, snapshot.row)).allowed:
            mine.append(snapshot)
    return mine


async def publish(deps: Deps, client: AsyncWebClient, user_id: str, state: HomeState | None = None) -> None:
    state = state or HomeState()
    mine = await awaiting(deps, user_id)
    connections = sorted({(s.row.connection_id, s.connection_name) for s in mine}, key=lambda c: c[1])
    actions = sorted({(s.row.action, s.row.action.replace("_", " ")) for s in mine})
    chosen = [s for s in mine if state.connection in (ANY, s.row.connection_id) and state.action in (ANY, s.row.action)]
    pages = max(1, -(-len(chosen) // PAGE_SIZE))
    state = replace(state, page=min(state.page, pages - 1))
    page = chosen[state.page * PAGE_SIZE:(state.page + 1) * PAGE_SIZE]
    claims = await _claims(deps, [s.id for s in page])
    approver = bool(mine) or await _approves_anything(deps, user_id)
    recent: list[render.Snapshot] = []
    if approver:
        recent = await render.load_where(deps.db, Approval.status != ApprovalStatus.PENDING,
                                         Approval.decided_at.is_not(None), order_by=Approval.decided_at.desc(),
                                         limit=RECENT_SHOWN)
    queue = HomeQueue(total=len(chosen), page=state.page, pages=pages, connections=connections, actions=actions,
                      connection=state.connection, action=state.action, state=state.dumps(),
                      previous_state=replace(state, page=max(0, state.page - 1)).dumps(),
                      next_state=replace(state, page=state.page + 1).dumps())
    items = [{**s.data, "claimable": True, "claimedBy": claims.get(s.id, [])} for s in page]
    view = app_home(items, [s.data for s in recent], test_mode=deps.container.settings.stripe_test_mode,
                    confirm_over_minor=_threshold(page), shows_decisions=approver, queue=queue)
    await client.views_publish(user_id=user_id, view=view)


async def _claims(deps: Deps, approval_ids: list[str]) -> dict[str, list[str]]:
    if not approval_ids:
        return {}
    async with deps.db.read() as session:
        rows = await session.execute(select(Claim.approval_id, Claim.user_id)
                                     .where(Claim.approval_id.in_(approval_ids)).order_by(Claim.id))
    found: dict[str, list[str]] = {}
    for approval_id, user in rows.all():
        found.setdefault(approval_id, []).append(user)
    return found


def _every_approver(deps: Deps) -> list[str]:
    """Everyone who may decide some request: CHEQPOINT_APPROVERS and every approver the policy names."""
    policy = deps.container.policy
    named = [*deps.container.settings.approvers, *policy.defaults.approvers]
    for compiled in policy.rules:
        named.extend(compiled.rule.approvers or ())
    return list(dict.fromkeys(named))


async def _approves_anything(deps: Deps, user_id: str) -> bool:
    """Whether this person may decide some request: named, or a member of a named user group."""
    named = _every_approver(deps)
    if user_id in named and not is_group(user_id):
        return True
    groups = deps.container.authority.groups
    if groups is None:
        return False
    for group in filter(is_group, named):
        if user_id in await groups.members(group):
            return True
    return False


def _threshold(pending: list[render.Snapshot]) -> int | None:
    # The builder takes one threshold for the view; with mixed currencies the lowest keeps every
    # large amount behind a confirmation (some small ones get one too, which is harmless).
    limits = [limit for s in pending if (limit := render.confirm_over_minor(s.data)) is not None]
    return min(limits) if limits else None


def _view_state(body: dict[str, Any]) -> HomeState:
    return HomeState.loads((body.get("view") or {}).get("private_metadata"))


def register(app: Any, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") == "home":
            await publish(deps, client, event["user"])

    async def turn_page(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        value = (body.get("actions") or [{}])[0].get("value")
        await publish(deps, client, body["user"]["id"], HomeState.loads(value))

    async def filter_by(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        action = (body.get("actions") or [{}])[0]
        chosen = str(((action.get("selected_option") or {}).get("value")) or ANY)
        field = "connection" if action.get("action_id") == ActionId.HOME_CONNECTION else "action"
        state = replace(_view_state(body), page=0, **{field: chosen[:100]})
        await publish(deps, client, body["user"]["id"], state)

    app.action(PAGE_NEXT)(turn_page)
    app.action(PAGE_PREVIOUS)(turn_page)
    app.action(ActionId.HOME_CONNECTION)(filter_by)
    app.action(ActionId.HOME_ACTION)(filter_by)
