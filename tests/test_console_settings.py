"""The console's settings: secrets are never empty, and a half-configured console is refused at start
(exit code 2, naming the variable), as every other setting is."""

import pytest
from pydantic import ValidationError

from api.config import Settings
from tests.ops_processes import cheqpoint

CONSOLE = {"SLACK_CLIENT_ID": "1234.5678", "SLACK_CLIENT_SECRET": "client-secret", "SLACK_TEAM_ID": "T0TEAM",
           "CHEQPOINT_SESSION_SECRET": "s" * 40}


@pytest.mark.parametrize(("values", "named"), [
    ({**CONSOLE, "SLACK_CLIENT_SECRET": "  "}, "SLACK_CLIENT_SECRET"),
    ({**CONSOLE, "CHEQPOINT_SESSION_SECRET": ""}, "CHEQPOINT_SESSION_SECRET"),
    ({**CONSOLE, "CHEQPOINT_SESSION_SECRET": "short"}, "at least 32"),
    ({k: v for k, v in CONSOLE.items() if k != "SLACK_CLIENT_SECRET"}, "SLACK_CLIENT_SECRET"),
    ({k: v for k, v in CONSOLE.items() if k != "SLACK_TEAM_ID"}, "SLACK_TEAM_ID"),
    ({**CONSOLE, "CHEQPOINT_VIEWERS": "finance-team"}, "CHEQPOINT_VIEWERS"),
])
def test_bad_console_settings_are_refused_by_name(values: dict[str, str], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(_env_file=None, **{k.lower(): v for k, v in values.items()})


def test_the_command_exits_2_naming_the_empty_secret(database_url: str) -> None:
    result = cheqpoint(database_url, "approvals", "list", **{**CONSOLE, "SLACK_CLIENT_SECRET": ""})
    assert result.returncode == 2 and "SLACK_CLIENT_SECRET" in result.stderr
    assert "Traceback" not in result.stderr and "client-secret" not in result.stderr


def test_a_configured_console_is_served_and_said_at_start() -> None:
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in CONSOLE.items()},
                        viewers="UAUDITOR, S0AUDIT")
    assert settings.console_enabled and settings.viewers == ["UAUDITOR", "S0AUDIT"]
    assert any(line.startswith("Console: at /console") for line in settings.describe())
    assert not Settings(_env_file=None).console_enabled
