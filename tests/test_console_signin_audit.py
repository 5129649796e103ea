"""Console sign-ins and sign-outs in the audit trail, over the real wire (the fake Slack's OpenID
endpoints): who, the outcome, and never a code, token or cookie."""

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from api.audit.models import AuditEvent
from api.console.sessions import SESSION_COOKIE, STATE_COOKIE
from tests.console_helpers import (
    AUDITOR,
    CLIENT_SECRET,
    OUTSIDER,
    STRANGER,
    ConsoleHarness,
    console_harness,
    hidden_fields,
)
from tests.operator_cli import operator_cli
from tests.slack_helpers import APPROVER


async def console_entries(h: ConsoleHarness) -> list[AuditEvent]:
    async with h.container.db.read() as session:
        rows = await session.scalars(select(AuditEvent).where(AuditEvent.event.like("console.%"))
                                     .order_by(AuditEvent.seq))
        return list(rows.all())


def as_text(entry: AuditEvent) -> str:
    return json.dumps({"actor": entry.actor, "before": entry.before, "after": entry.after, "detail": entry.detail})


async def sign_in_keeping_secrets(h: ConsoleHarness, user: str) -> tuple[Any, list[str]]:
    """Sign in as a browser would; returns the answer and every secret the exchange carried."""
    started = await h.start_sign_in()
    state_cookie = h.http.cookies.get(STATE_COOKIE) or ""
    back = await h.consent(started.headers["location"], user)
    query = parse_qs(urlsplit(back).query)
    answer = await h.http.get(urlsplit(back).path, params={k: v[0] for k, v in query.items()})
    secrets = [query["code"][0], query["state"][0], state_cookie, CLIENT_SECRET]
    return answer, [s for s in secrets if s]


async def test_a_sign_in_and_a_sign_out_are_each_audited_once_without_secrets(
        make_settings: Callable[..., Any], clock: Any, database_url: str) -> None:
    async with console_harness(make_settings, clock) as h:
        answer, secrets = await sign_in_keeping_secrets(h, APPROVER)
        assert answer.status_code == 303
        cookie = h.http.cookies.get(SESSION_COOKIE)
        assert cookie
        [signed_in] = await console_entries(h)
        assert signed_in.event == "console.signed_in"
        assert signed_in.actor == {"type": "slack_user", "id": APPROVER, "name": "Dana Reviewer"}
        assert signed_in.detail == {"outcome": "signed_in", "role": "decider", "team": h.fake.team_id}

        queue = await h.http.get("/console")
        csrf = hidden_fields(queue.text)["csrf"]
        out = await h.http.post("/console/logout", data={"csrf": csrf})
        assert out.status_code == 303
        entries = await console_entries(h)
        assert [e.event for e in entries] == ["console.signed_in", "console.signed_out"]
        assert entries[1].actor == {"type": "slack_user", "id": APPROVER, "name": "Dana Reviewer"}
        assert entries[1].detail == {"outcome": "signed_out"}
        for entry in entries:
            text = as_text(entry)
            for secret in [*secrets, cookie, csrf]:
                assert secret not in text
    result = operator_cli(database_url, "audit", "verify")
    assert result.returncode == 0, result.stderr


async def test_a_viewer_is_recorded_as_a_viewer(make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        assert (await h.sign_in(AUDITOR)).status_code == 303  # a viewer through the S0AUDIT group
        [entry] = await console_entries(h)
        assert entry.actor["id"] == AUDITOR and entry.detail["role"] == "viewer"


async def test_a_member_who_is_neither_approver_nor_viewer_is_refused_and_audited(
        make_settings: Callable[..., Any], clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        answer, secrets = await sign_in_keeping_secrets(h, STRANGER)
        assert answer.status_code == 403 and h.http.cookies.get(SESSION_COOKIE) is None
        [entry] = await console_entries(h)
        assert entry.event == "console.sign_in_refused"
        assert entry.actor == {"type": "slack_user", "id": STRANGER, "name": "Sam Stranger"}
        assert entry.detail == {"outcome": "refused", "reason": "neither an approver nor a viewer",
                                "team": h.fake.team_id}
        assert not any(secret in as_text(entry) for secret in secrets)


async def test_a_member_of_another_workspace_is_refused_and_audited(make_settings: Callable[..., Any],
                                                                    clock: Any) -> None:
    async with console_harness(make_settings, clock) as h:
        answer, secrets = await sign_in_keeping_secrets(h, OUTSIDER)
        assert answer.status_code == 403 and h.http.cookies.get(SESSION_COOKIE) is None
        [entry] = await console_entries(h)
        assert entry.event == "console.sign_in_refused"
        assert entry.actor == {"type": "slack_user", "id": OUTSIDER, "name": "Otto Outsider"}
        assert entry.detail == {"outcome": "refused", "reason": "another Slack workspace", "team": "T0ELSEWHERE"}
        assert not any(secret in as_text(entry) for secret in secrets)


async def test_a_sign_out_forged_from_another_site_writes_nothing(make_settings: Callable[..., Any],
                                                                 clock: Any) -> None:
    """Cross-site sign-out: the browser sends the session cookie, but the form has no valid CSRF token."""
    async with console_harness(make_settings, clock) as h:
        await h.sign_in(APPROVER)
        for form in ({"csrf": ""}, {"csrf": "guessed"}):
            refused = await h.http.post("/console/logout", data=form)
            assert refused.status_code == 403
        assert h.http.cookies.get(SESSION_COOKIE)  # still signed in
        assert [e.event for e in await console_entries(h)] == ["console.signed_in"]


async def test_callbacks_nobody_was_identified_by_write_nothing(make_settings: Callable[..., Any],
                                                                clock: Any) -> None:
    """Anyone on the internet can hit the callback: only a person Slack named may add to the trail."""
    async with console_harness(make_settings, clock) as h:
        for _ in range(5):
            await h.start_sign_in()
            answer = await h.http.get("/console/auth/callback", params={"code": "forged", "state": "forged"})
            assert answer.status_code == 400
        h.openid.id_token_overrides["nonce"] = "a-replayed-token"
        assert (await h.sign_in(APPROVER)).status_code == 400
        assert await console_entries(h) == []
