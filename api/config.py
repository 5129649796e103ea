"""Settings from the environment (and a `.env` file), as CONTRACT §2 lists them."""

from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# One hold of a synchronous request is capped so a proxy's idle timeout never cuts it; clients
# keep holding with `GET /v1/approvals/{id}?waitMs=`.
MAX_HOLD_MS = 60_000
MAX_BODY_BYTES = 256 * 1024
# JSON bodies nested deeper than this are refused with 400 before anything parses them further: no
# request this API takes needs more, and deep nesting is how parsers and validators are made to fail.
MAX_JSON_DEPTH = 32



# Every setting that holds a secret, by the variable that sets it: set but empty is refused (an empty
# signing secret would be an empty HMAC key), and none of them is ever printed.
_SECRET_NAMES = {"database_dsn": "DATABASE_URL", "slack_bot_token": "SLACK_BOT_TOKEN",
                 "slack_signing_secret": "SLACK_SIGNING_SECRET", "slack_app_token": "SLACK_APP_TOKEN",
                 "stripe_secret_key": "STRIPE_SECRET_KEY", "connection_key": "CHEQPOINT_CONNECTION_KEY"}


def _alias(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # A secret: a PostgreSQL URL carries its password. Read it with `database_url`.
    database_dsn: SecretStr = Field(SecretStr("sqlite+aiosqlite:///./cheqpoint.db"),
                                    validation_alias=_alias("DATABASE_URL"))

    slack_bot_token: SecretStr | None = Field(None, validation_alias=_alias("SLACK_BOT_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(None, validation_alias=_alias("SLACK_SIGNING_SECRET"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_alias("SLACK_APP_TOKEN"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_alias("SLACK_API_URL"))
    review_channel: str | None = Field(None, validation_alias=_alias("CHEQPOINT_REVIEW_CHANNEL"))
    alerts_channel: str | None = Field(None, validation_alias=_alias("CHEQPOINT_ALERTS_CHANNEL"))
    approvers: Annotated[list[str], NoDecode] = Field(default_factory=list,
                                                      validation_alias=_alias("CHEQPOINT_APPROVERS"))

    stripe_secret_key: SecretStr | None = Field(None, validation_alias=_alias("STRIPE_SECRET_KEY"))
    stripe_api_base: str = Field("https://api.stripe.com", validation_alias=_alias("STRIPE_API_BASE"))
    # The signing secret of the Stripe webhook endpoint (whsec_…); unset: /stripe/webhook answers 404.
    stripe_webhook_secret: SecretStr | None = Field(None, validation_alias=_alias("STRIPE_WEBHOOK_SECRET"))

    policy_file: Path | None = Field(None, validation_alias=_alias("CHEQPOINT_POLICY_FILE"))
    url: str = Field("http://127.0.0.1:8000", validation_alias=_alias("CHEQPOINT_URL"))
    connection_key: SecretStr | None = Field(None, validation_alias=_alias("CHEQPOINT_CONNECTION_KEY"))
    callback_allow_private: bool = Field(False, validation_alias=_alias("CHEQPOINT_CALLBACK_ALLOW_PRIVATE"))
    # More requests than this waiting to be shown in the review channel: they are grouped into digests.
    slack_digest_threshold: int = Field(10, ge=1, validation_alias=_alias("CHEQPOINT_SLACK_DIGEST_THRESHOLD"))

    # The web console (docs/console.md): Sign in with Slack (OpenID Connect) and who may read it.
    slack_client_id: str | None = Field(None, validation_alias=_alias("SLACK_CLIENT_ID"))
    slack_client_secret: SecretStr | None = Field(None, validation_alias=_alias("SLACK_CLIENT_SECRET"))
    slack_oauth_url: str = Field("https://slack.com/openid/connect/authorize",
                                 validation_alias=_alias("SLACK_OAUTH_URL"))
    # The workspace whose members may sign in; unset: the bot token's workspace (Slack's auth.test).
    slack_team_id: str | None = Field(None, validation_alias=_alias("SLACK_TEAM_ID"))
    viewers: Annotated[list[str], NoDecode] = Field(default_factory=list, validation_alias=_alias("CHEQPOINT_VIEWERS"))
    console_session_secret: SecretStr | None = Field(None, validation_alias=_alias("CHEQPOINT_SESSION_SECRET"))

    # How often the worker looks for due jobs when nothing in this process woke it.
    worker_poll_seconds: float = Field(0.5, validation_alias=_alias("CHEQPOINT_WORKER_POLL_SECONDS"))

    # Operations (docs/operations.md): logs, the HTTP server's limits, and how long a stop may take.
    log_format: Literal["json", "console"] = Field("json", validation_alias=_alias("LOG_FORMAT"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", validation_alias=_alias("LOG_LEVEL"))
    shutdown_grace_seconds: float = Field(10.0, ge=0, validation_alias=_alias("CHEQPOINT_SHUTDOWN_GRACE_SECONDS"))
    # Ten thousand held requests (`timeoutMs`, `waitMs`) fit in one process (docs/performance.md), with room
    # for the requests that decide them; the process raises its open-files limit to match.
    max_concurrency: int = Field(12_000, ge=1, validation_alias=_alias("CHEQPOINT_MAX_CONCURRENCY"))
    # The database pool: connections (unset: the driver's default) and how long a request waits for one
    # before it is answered 503 with Retry-After (api/admission.py) instead of queueing on.
    db_pool_size: int | None = Field(None, ge=1, validation_alias=_alias("CHEQPOINT_DB_POOL_SIZE"))
    db_pool_timeout_seconds: float = Field(10.0, gt=0, validation_alias=_alias("CHEQPOINT_DB_POOL_TIMEOUT_SECONDS"))
    keep_alive_seconds: float = Field(5.0, gt=0, validation_alias=_alias("CHEQPOINT_KEEP_ALIVE_SECONDS"))
    header_timeout_seconds: float = Field(10.0, gt=0, validation_alias=_alias("CHEQPOINT_HEADER_TIMEOUT_SECONDS"))
    body_timeout_seconds: float = Field(30.0, gt=0, validation_alias=_alias("CHEQPOINT_BODY_TIMEOUT_SECONDS"))

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    # Per Connection (docs/security.md); 0 turns a limit off.
    limit_requests_per_minute: int = Field(120, ge=0, validation_alias=_alias("CHEQPOINT_LIMIT_REQUESTS_PER_MINUTE"))
    limit_lookups_per_minute: int = Field(60, ge=0, validation_alias=_alias("CHEQPOINT_LIMIT_LOOKUPS_PER_MINUTE"))
    limit_pending: int = Field(500, ge=0, validation_alias=_alias("CHEQPOINT_LIMIT_PENDING"))
    limit_holds: int = Field(50, ge=0, validation_alias=_alias("CHEQPOINT_LIMIT_HOLDS"))

    @field_validator("database_dsn", "slack_bot_token", "slack_signing_secret", "slack_app_token",
                     "stripe_secret_key", "connection_key", mode="before")
    @classmethod
    def _refuse_empty_secrets(cls, value: object, info: ValidationInfo) -> object:
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(plain, str) and not plain.strip():
            name = _SECRET_NAMES[info.field_name or ""]
            raise ValueError(f"{name} is set but empty; set a value or remove the variable")
        return value

    @field_validator("approvers", "viewers", mode="before")
    @classmethod
    def _split_approvers(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("approvers")
    @classmethod
    def _check_approver_ids(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not (v[:1] in ("U", "W", "S") and v[1:].isalnum())]
        if bad:
            raise ValueError(
                f"CHEQPOINT_APPROVERS takes Slack user ids (U…, W…) and user-group ids (S…); not {bad}"
            )
        return value

    @field_validator("viewers")
    @classmethod
    def _check_viewer_ids(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not (v[:1] in ("U", "W", "S") and v[1:].isalnum())]
        if bad:
            raise ValueError(f"CHEQPOINT_VIEWERS takes Slack user ids (U…, W…) and user-group ids (S…); not {bad}")
        return value

    @field_validator("slack_client_secret", "console_session_secret")
    @classmethod
    def _refuse_empty_console_secrets(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        name = {"slack_client_secret": "SLACK_CLIENT_SECRET"}.get(info.field_name or "", "CHEQPOINT_SESSION_SECRET")
        if value is not None and not value.get_secret_value().strip():
            raise ValueError(f"{name} is set but empty; unset it or give a real secret")
        if name == "CHEQPOINT_SESSION_SECRET" and value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("CHEQPOINT_SESSION_SECRET must be at least 32 characters (it signs console sessions)")
        return value

    @model_validator(mode="after")
    def _console_needs_all_its_parts(self) -> "Settings":
        parts = {"SLACK_CLIENT_ID": self.slack_client_id, "SLACK_CLIENT_SECRET": self.slack_client_secret,
                 "CHEQPOINT_SESSION_SECRET": self.console_session_secret}
        given = [name for name, v in parts.items() if v]
        if given and len(given) < len(parts):
            missing = [name for name in parts if name not in given]
            raise ValueError(f"the console needs {' and '.join(missing)} too (or unset {', '.join(given)})")
        if given and not self.slack_team_id and not self.slack_bot_token:
            raise ValueError("the console needs SLACK_TEAM_ID (or SLACK_BOT_TOKEN) to know whose members may sign in")
        return self

    @field_validator("stripe_webhook_secret")
    @classmethod
    def _refuse_empty_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty secret would make every signature check fail (or, worse, look configured): say so.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("STRIPE_WEBHOOK_SECRET is set but empty; unset it or give the endpoint's whsec_… secret")
        return value

    @field_validator("database_dsn")
    @classmethod
    def _check_database_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://", "postgresql+psycopg://")):
            raise ValueError(
                "DATABASE_URL must be an async SQLAlchemy URL: sqlite+aiosqlite:///…, "
                "postgresql+asyncpg://… or postgresql+psycopg://…"
            )
        return value

    @model_validator(mode="after")
    def _slack_needs_channel_and_approvers(self) -> "Settings":
        if self.slack_enabled:
            missing = [name for name, v in (("CHEQPOINT_REVIEW_CHANNEL", self.review_channel),
                                            ("CHEQPOINT_APPROVERS", self.approvers)) if not v]
            if missing:
                raise ValueError(f"Slack is enabled, so {' and '.join(missing)} must be set")
        return self

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None and (
            self.slack_signing_secret is not None or self.slack_app_token is not None
        )

    @property
    def database_url(self) -> str:
        """The URL itself, for the code that connects; never log or print it."""
        return self.database_dsn.get_secret_value()

    @property
    def console_enabled(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret and self.console_session_secret)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def stripe_test_mode(self) -> bool:
        key = self.stripe_secret_key.get_secret_value() if self.stripe_secret_key else ""
        return key.startswith(("sk_test_", "rk_test_"))

    def describe(self) -> list[str]:
        """Which parts are enabled, for the start-up message. Never includes a secret."""
        if not self.slack_enabled:
            slack = "Slack: disabled (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET); decide with the CLI"
        else:
            slack = "Slack: enabled (" + ("Socket Mode)" if self.slack_app_token else "HTTP at /slack/events)")
        if not self.stripe_secret_key:
            stripe = "Stripe: disabled (STRIPE_SECRET_KEY unset): executions fail with a clear error"
        else:
            stripe = "Stripe: enabled" + (" (test mode)" if self.stripe_test_mode else "")
        policy = f"Policy: {self.policy_file}" if self.policy_file else \
            "Policy: built-in default (every write reviewed by one approver)"
        db = "Database: SQLite" if self.is_sqlite else "Database: PostgreSQL"
        webhooks = ("Stripe webhooks: verified at /stripe/webhook" if self.stripe_webhook_secret else
                    "Stripe webhooks: disabled (STRIPE_WEBHOOK_SECRET unset): /stripe/webhook answers 404")
        console = "Console: at /console, Sign in with Slack" if self.console_enabled else \
            "Console: disabled (set SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and CHEQPOINT_SESSION_SECRET)"
        return [db, slack, stripe, webhooks, policy, console]
