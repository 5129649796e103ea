"""manifest.yml is a valid Slack app manifest that points at /slack/events and asks for exactly
the scopes the bot's Web API calls need, and the console's Sign in with Slack works with it."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from api.console.oidc import SCOPES, SlackOpenID

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT.parent / "shared" / "vendor" / "slack"
SCHEMA_DIR = VENDOR / "manifest-schema"
METHODS_DIR = VENDOR / "methods"

# Every Web API method the bot calls (the fake Slack serves the same list).
BOT_METHODS = (
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "chat.getPermalink",
    "views.open",
    "views.update",
    "views.push",
    "views.publish",
    "usergroups.users.list",
    "users.info",
    "conversations.info",
    "conversations.history",
)
# Slack documents chat.getPermalink as needing no scope; its spec is not vendored.
NO_SCOPE_METHODS = {"chat.getPermalink"}
# Methods whose specs are not vendored, with the bot scopes Slack's reference pages list for them.
UNVENDORED_SCOPES = {"conversations.history": {"channels:history", "groups:history", "im:history", "mpim:history"}}
# How the code names Web API methods: the SDK's `client.chat_postMessage(…)`, or a method name given as text.
_SDK_CALL = re.compile(r"\.((?:auth|chat|conversations|usergroups|users|views)_[A-Za-z_]+)\(")
_NAMED_CALL = re.compile(r"""call\(\s*["']((?:auth|chat|conversations|usergroups|users|views)\.[A-Za-z.]+)["']""")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


def schema_validator() -> Draft7Validator:
    """The top schema refers to the versioned ones by their GitHub URLs; serve those from disk."""
    top = json.loads((SCHEMA_DIR / "manifest.schema.json").read_text())
    registry = Registry()
    for path in SCHEMA_DIR.glob("manifest.schema.*.json"):
        url = f"https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/{path.name}"
        resource = Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT7)
        registry = registry.with_resource(url, resource)
    return Draft7Validator(top, registry=registry)


def test_manifest_is_valid_against_slacks_schema(manifest):
    if not SCHEMA_DIR.is_dir():
        pytest.skip(f"Slack's manifest schema is not vendored at {SCHEMA_DIR}")
    assert schema_validator().is_valid(manifest), "manifest.yml is not a valid Slack manifest:\n" + _causes(manifest)


def _causes(manifest: dict) -> str:
    # The top schema's oneOf over manifest versions hides the cause; the versioned one names it.
    version = manifest.get("_metadata", {}).get("major_version", 1)
    versioned = json.loads((SCHEMA_DIR / f"manifest.schema.{version}.0.0.json").read_text())
    return "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in Draft7Validator(versioned).iter_errors(manifest))


def test_schema_catches_a_broken_manifest(manifest):
    if not SCHEMA_DIR.is_dir():
        pytest.skip(f"Slack's manifest schema is not vendored at {SCHEMA_DIR}")
    broken = {**manifest, "settings": {**manifest["settings"], "interactivity": {"request_url": "x"}}}
    assert not schema_validator().is_valid(broken)


def test_events_and_interactivity_point_at_slack_events(manifest):
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith("/slack/events")
    assert settings["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    assert settings["socket_mode_enabled"] is False and settings["org_deploy_enabled"] is False
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def methods_in_code() -> set[str]:
    """Every Web API method the Slack adapter and the start-up checks call, read from the source."""
    found = set()
    for path in [*(ROOT / "bot").rglob("*.py"), ROOT / "api" / "startup.py"]:
        text = path.read_text()
        found |= {name.replace("_", ".") for name in _SDK_CALL.findall(text)}
        found |= set(_NAMED_CALL.findall(text))
    return found


def test_the_method_list_names_every_method_the_code_calls():
    # Otherwise a new call (conversations.history for the crash-safe post) gets no scope and fails
    # in a real workspace with `missing_scope`, while the fake Slack never minds.
    missing = methods_in_code() - set(BOT_METHODS)
    assert not missing, f"methods called but not checked for scopes: {sorted(missing)}"


def method_scopes() -> dict[str, set[str]]:
    """Each method's bot scopes, any one of which suffices (conversations.info lists one per kind)."""
    scopes = {}
    for method in BOT_METHODS:
        if method in NO_SCOPE_METHODS:
            scopes[method] = set()
            continue
        if method in UNVENDORED_SCOPES:
            scopes[method] = UNVENDORED_SCOPES[method]
            continue
        spec = json.loads((METHODS_DIR / f"{method}.json").read_text())
        scopes[method] = set(spec.get("scope", {}).get("bot", []))
    return scopes


def test_scopes_cover_the_methods_the_bot_calls_and_no_more(manifest):
    if not METHODS_DIR.is_dir():
        pytest.skip(f"Slack's method specs are not vendored at {METHODS_DIR}")
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    needed = method_scopes()
    uncovered = [method for method, scopes in needed.items() if scopes and not scopes & granted]
    assert not uncovered, f"no scope granted for {uncovered}"
    unused = granted - set().union(*needed.values())
    assert not unused, f"scopes no method needs: {sorted(unused)}"
    # The review channel may be public or private.
    assert {"channels:read", "groups:read", "channels:history", "groups:history"} <= granted


def test_user_scopes_are_exactly_what_sign_in_with_slack_asks_for(manifest):
    # Slack refuses an authorize request for scopes the app was not given (`invalid_scope`).
    assert set(manifest["oauth_config"]["scopes"]["user"]) == set(SCOPES.split())
    assert "email" not in SCOPES.split()  # nothing reads it, so nobody is asked for it


def test_the_consoles_redirect_url_is_registered(manifest):
    # Slack sends people back only to a registered redirect URL (`bad_redirect_uri` otherwise).
    public = manifest["settings"]["interactivity"]["request_url"].removesuffix("/slack/events")
    settings = SimpleNamespace(slack_client_id="client", slack_client_secret=SimpleNamespace(
        get_secret_value=lambda: "secret"), slack_oauth_url="https://slack.com/openid/connect/authorize",
        slack_api_url="https://slack.com/api/", url=public)
    redirect = SlackOpenID(settings, http=None).redirect_uri  # type: ignore[arg-type]
    assert redirect in manifest["oauth_config"]["redirect_urls"]
