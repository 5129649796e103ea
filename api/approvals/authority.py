"""Who may decide a request: one function of the core, asked by every surface and by the decision service.

Approvers are resolved when someone decides, not copied at intake: from the rule named by the
request's `rule` in the *current* policy, else the policy's defaults, else `CHEQPOINT_APPROVERS`.
Someone removed from the settings or the policy loses the right at once, even on requests made
before. User-group members come from a `GroupMembers` directory (Slack's `usergroups.users.list`);
without one (Slack not configured) a group cannot be expanded, so only users named directly may
decide. A directory that cannot read a group answers no members: failing closed refuses, it never
lets anyone in.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from api.approvals.models import Approval
from api.errors import AppError
from api.policy import Policy


class GroupMembers(Protocol):
    async def members(self, group: str) -> frozenset[str]:
        """The user ids in a user group; empty when the group cannot be read."""
        ...


class NotAnApprover(AppError):
    """The person may not decide this request; nothing was recorded but the attempt."""

    status = 403
    title = "Forbidden"
    type = "https://cheqpoint.dev/problems/not-an-approver"


@dataclass(frozen=True)
class Authorisation:
    allowed: bool
    approvers: tuple[str, ...]  # the ids (users and groups) that may decide this request now
    reason: str  # why: "named", "member of S…", or why not


def is_group(approver_id: str) -> bool:
    return approver_id.startswith("S")


def approvers_for(approval: Approval, policy: Policy, fallback: Sequence[str]) -> tuple[str, ...]:
    """The users and user groups that may decide `approval` under the current policy and settings."""
    for compiled in policy.rules:
        if compiled.rule.name == approval.rule and compiled.rule.approvers:
            return tuple(compiled.rule.approvers)
    if policy.defaults.approvers:
        return tuple(policy.defaults.approvers)
    return tuple(fallback)


async def may_decide(person_id: str, approval: Approval, *, policy: Policy, fallback: Sequence[str],
                     groups: GroupMembers | None) -> Authorisation:
    """Whether the person with this Slack user id may approve, reject or edit `approval` now."""
    approvers = approvers_for(approval, policy, fallback)
    if not approvers:
        return Authorisation(False, approvers, "no approvers are configured (CHEQPOINT_APPROVERS or the policy)")
    if person_id in approvers and not is_group(person_id):
        return Authorisation(True, approvers, "named")
    group_ids = [a for a in approvers if is_group(a)]
    for group in group_ids:
        if groups is not None and person_id in await groups.members(group):
            return Authorisation(True, approvers, f"member of {group}")
    if group_ids and groups is None:
        return Authorisation(False, approvers, f"{person_id} is not named among the approvers, and user groups "
                                               f"({', '.join(group_ids)}) cannot be read without Slack")
    return Authorisation(False, approvers, f"{person_id} is not among the approvers ({', '.join(approvers)})")


class Authority:
    """`may_decide` bound to this deployment's policy, settings and (once Slack is installed) groups."""

    def __init__(self, policy: Callable[[], Policy], fallback: Sequence[str]) -> None:
        self.policy = policy
        self.fallback = tuple(fallback)
        self.groups: GroupMembers | None = None  # set by the Slack adapter when it is installed

    def approvers_for(self, approval: Approval) -> tuple[str, ...]:
        return approvers_for(approval, self.policy(), self.fallback)

    async def may_decide(self, person_id: str, approval: Approval) -> Authorisation:
        return await may_decide(person_id, approval, policy=self.policy(), fallback=self.fallback,
                                groups=self.groups)
