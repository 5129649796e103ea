"""App Home: the requests waiting for this reviewer, with their buttons, and the latest decisions."""

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from api.approvals.authority import is_group
from api.approvals.models import Approval
from bot import render
from bot.blocks import app_home
from bot.handlers.common import Deps

# Enough to fill the view (Slack allows 100 blocks; the builder says "… and N more").
PENDING_SCANNED = 200
RECENT_SHOWN = 15


async def publish(deps: Deps, client: AsyncWebClient, user_id: str) -> None:
    db = deps.db
    pending = await render.load_where(db, Approval.status == "pending", order_by=Approval.expires_at,
                                      limit=PENDING_SCANNED)
    authority = deps.container.authority
    mine = [s for s in pending if (await authority.may_decide(user_id, s.row)).allowed]
    approver = bool(mine) or await _approves_anything(deps, user_id)
    recent: list[render.Snapshot] = []
    if approver:
        recent = await render.load_where(db, Approval.status != "pending", Approval.decided_at.is_not(None),
                                         order_by=Approval.decided_at.desc(), limit=RECENT_SHOWN)
    view = app_home([s.data for s in mine], [s.data for s in recent],
                    test_mode=deps.container.settings.stripe_test_mode,
                    confirm_over_minor=_threshold(mine), shows_decisions=approver)
    await client.views_publish(user_id=user_id, view=view)


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


def register(app: Any, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") == "home":
            await publish(deps, client, event["user"])
