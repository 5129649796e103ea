"""Where one callback delivery stands (`callback_deliveries.status`, the CLI and the console)."""

from enum import StrEnum


class DeliveryStatus(StrEnum):
    PENDING = "pending"      # its job is trying (or will, after a redelivery)
    DELIVERED = "delivered"
    FAILED = "failed"        # gave up, or never sent (the Connection was revoked first)
