from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Actor:
    """Who made a decision: a Slack user, an operator at the CLI, a policy rule, or the system."""

    type: str  # slack_user | operator | rule | system
    id: str
    name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "name": self.name}


SYSTEM = Actor("system", "cheqpoint", "Cheqpoint")
