"""manifest.yml is a valid Slack app manifest that points at /slack/events and asks for exactly
the scopes the bot's Web API calls need."""

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

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
)
# Slack documents chat.getPermalink as needing no scope; its spec is not vendored.
NO_SCOPE_METHODS = {"chat.getPermalink"}


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


def method_scopes() -> dict[str, set[str]]:
    """Each method's bot scopes, any one of which suffices (conversations.info lists one per kind)."""
    scopes = {}
    for method in BOT_METHODS:
        if method in NO_SCOPE_METHODS:
            scopes[method] = set()
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
    assert {"channels:read", "groups:read"} <= granted
