from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from api.db import Base, utcnow


class Connection(Base):
    """One agent integration: its key (stored only as a hash) and its webhook signing secret.

    After a rotation the previous key and secret stay valid until their `…_expires_at` (the grace
    period), so agents can switch without an outage.
    """

    __tablename__ = "connections"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    webhook_secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    previous_key_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    previous_key_expires_at: Mapped[datetime | None]
    previous_webhook_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None]

    def accepts_key_hash(self, key_hash: str, now: datetime) -> bool:
        """Whether a key with this hash authenticates now: the current one, or the previous within its grace."""
        if self.revoked_at is not None:
            return False
        if key_hash == self.key_hash:
            return True
        return (key_hash == self.previous_key_hash and self.previous_key_expires_at is not None
                and now < self.previous_key_expires_at)

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets callbacks are signed with now: the current one first, then the previous within its grace."""
        secrets = [self.webhook_secret]
        if (self.previous_webhook_secret and self.previous_secret_expires_at is not None
                and now < self.previous_secret_expires_at):
            secrets.append(self.previous_webhook_secret)
        return secrets
