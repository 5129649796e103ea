"""Typed Slack identifiers: the action_ids, callback_ids and block_ids the builders emit and the
handlers listen for, plus the reference carried in button values and modal metadata.

Keeping them in one place means a renamed button cannot silently stop reaching its handler.
"""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ActionId(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    EDIT = "edit"
    NOTE = "note"
    # CONTRACT §7: the edit modal's amount input is called `amount`, whatever the field is named.
    AMOUNT = "amount"
    # Digests, claims and the App Home queue.
    DETAILS = "details"
    CLAIM = "claim"
    APPROVE_ALL = "approve_all"
    APPROVE_ANYWAY = "approve_anyway"
    REJECT_ANYWAY = "reject_anyway"
    DIGEST_PAGE = "digest_page"
    HOME_PAGE = "home_page"
    HOME_CONNECTION = "home_connection"
    HOME_ACTION = "home_action"


class CallbackId(StrEnum):
    REJECT_MODAL = "reject_modal"
    EDIT_MODAL = "edit_modal"
    BULK_MODAL = "bulk_modal"
    DETAILS_MODAL = "details_modal"


class BlockId(StrEnum):
    NOTE = "note"
    SUMMARY = "summary"
    DETAILS = "details"
    OUTCOME = "outcome"


# Slack names the amount input `amount`; every other editable field keeps its own name.
_ACTION_ID_BY_FIELD = {"amount_cents": ActionId.AMOUNT.value}


def field_action_id(field_name: str) -> str:
    """The action_id of the edit-modal input for a catalogue field (`amount_cents` → `amount`)."""
    return _ACTION_ID_BY_FIELD.get(field_name, field_name)


def field_block_id(field_name: str) -> str:
    """The block_id of the edit-modal input for a field; `response_action: errors` is keyed by it."""
    return f"field.{field_name}"


def review_actions_block_id(approval_id: str) -> str:
    """Unique per approval, so several requests' buttons can share one App Home view."""
    return f"review.{approval_id}"


class ButtonRef(BaseModel):
    """What a button value or a modal's private_metadata points at.

    The version lets a handler tell a click on an outdated message from a current one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    approval_id: str = Field(min_length=1, max_length=200)
    version: int = Field(ge=0)

    def dumps(self) -> str:
        return self.model_dump_json()

    @classmethod
    def loads(cls, raw: str | None) -> "ButtonRef":
        """Parse a value this app wrote; anything else raises ValueError."""
        if not isinstance(raw, str | bytes):
            raise ValueError("button reference is missing")
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise ValueError(f"not a Cheqpoint button reference: {raw[:80]!r}") from exc


class DigestRef(BaseModel):
    """What a digest's bulk and page buttons (and the bulk modal's metadata) point at: the digest
    and the render the person saw, so a stale "Approve all" decides only what that render showed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    digest_id: str = Field(min_length=1, max_length=40)
    generation: int = Field(ge=0)
    page: int = Field(default=0, ge=0)

    def dumps(self) -> str:
        return self.model_dump_json()

    @classmethod
    def loads(cls, raw: str | None) -> "DigestRef":
        if not isinstance(raw, str | bytes):
            raise ValueError("digest reference is missing")
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise ValueError(f"not a Cheqpoint digest reference: {raw[:80]!r}") from exc
