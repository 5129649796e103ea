"""Who may use the console, asked of the current configuration on every request.

Deciders are the people the core authority names anywhere (`CHEQPOINT_APPROVERS`, the policy's
defaults and its rules' approvers, user groups expanded); whether they may decide one request is
still the core's `may_decide`, asked again by `Decisions.decide`. `CHEQPOINT_VIEWERS` (users and
user groups) may read. Everyone else is refused.
"""

from dataclasses import dataclass
from enum import StrEnum

from api.approvals.authority import Authority, is_group
from api.config import Settings


class Role(StrEnum):
    DECIDER = "decider"
    VIEWER = "viewer"


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str
    role: Role

    @property
    def may_decide_anything(self) -> bool:
        return self.role is Role.DECIDER


def all_approvers(authority: Authority) -> tuple[str, ...]:
    """Every user and group id that may decide some request under the current policy and settings."""
    policy = authority.policy()
    ids: list[str] = [*authority.fallback, *policy.defaults.approvers]
    for compiled in policy.rules:
        ids.extend(compiled.rule.approvers or ())
    return tuple(dict.fromkeys(ids))


async def _listed(user_id: str, ids: tuple[str, ...] | list[str], authority: Authority) -> bool:
    if user_id in ids and not is_group(user_id):
        return True
    for group in (i for i in ids if is_group(i)):
        # Without Slack the groups cannot be read: their members are refused (failing closed).
        if authority.groups is not None and user_id in await authority.groups.members(group):
            return True
    return False


async def role_of(user_id: str, settings: Settings, authority: Authority) -> Role | None:
    if await _listed(user_id, all_approvers(authority), authority):
        return Role.DECIDER
    if await _listed(user_id, settings.viewers, authority):
        return Role.VIEWER
    return None
