from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Actor:
    """Who made a decision: a Slack user, an operator at the CLI, a policy rule, or the system.

    A person is named by their Slack user id whatever the surface, so a quorum counts people, not
    the ways they reached us. `via` says where a CLI decision was typed (OS user and host); it goes
    to the audit trail and the vote, not to agents.
    """

    type: str  # slack_user | operator | rule | system
    id: str
    name: str | None = None
    via: dict[str, str] | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "name": self.name}

    def audit_dict(self) -> dict[str, Any]:
        """As the audit trail records it: with `via` when there is one."""
        return {**self.as_dict(), "via": self.via} if self.via else self.as_dict()


SYSTEM = Actor("system", "cheqpoint", "Cheqpoint")
