"""A user-group directory with fixed members, for tests that run without Slack but whose policy
names a group (the Slack adapter's `ApproverDirectory` plays this part in production)."""

from collections.abc import Iterable, Mapping


class StaticGroups:
    def __init__(self, groups: Mapping[str, Iterable[str]]) -> None:
        self.groups = {group: frozenset(members) for group, members in groups.items()}

    async def members(self, group: str) -> frozenset[str]:
        return self.groups.get(group, frozenset())
