"""Pure Block Kit builders: approval dicts (CONTRACT §3) in, Slack payloads out.

No I/O and no domain imports beyond `api.money`, so every builder is tested on its own and the
handlers and notifier stay thin.
"""

from bot.blocks.home import app_home
from bot.blocks.messages import decided_message, review_message
from bot.blocks.modals import edit_modal, read_edit_submission, read_note, reject_modal
from bot.blocks.notices import AlertKind, alert_text, delivery_failed_text, reminder_text

__all__ = [
    "AlertKind",
    "alert_text",
    "app_home",
    "decided_message",
    "delivery_failed_text",
    "edit_modal",
    "read_edit_submission",
    "read_note",
    "reject_modal",
    "reminder_text",
    "review_message",
]
