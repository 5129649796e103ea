"""CHEQPOINT_TEST_SLACK_LIMITS=1 puts every FakeSlack under Slack's real rate limits, so any test can
be run once as Slack would answer it (they stay opt-in: see the fake)."""

import httpx

from tests.fakes.slack import FakeSlack

TOKEN = "xoxb-limits"


def _post(url: str) -> httpx.Response:
    return httpx.post(f"{url}chat.postMessage", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"channel": "C0REVIEW", "text": "x"})


def test_the_environment_switch_puts_the_fake_under_slacks_limits(monkeypatch):
    monkeypatch.setenv("CHEQPOINT_TEST_SLACK_LIMITS", "1")
    fake = FakeSlack(token=TOKEN, channels=("C0REVIEW",))
    with fake.serving() as url:
        answers = [_post(url) for _ in range(8)]  # chat.postMessage: a burst of 5, then one a second
    limited = [a for a in answers if a.status_code == 429]
    assert limited and all(int(a.headers["Retry-After"]) >= 1 for a in limited)
    assert fake.rate_limited == len(limited)


def test_without_it_the_fake_answers_every_call():
    fake = FakeSlack(token=TOKEN, channels=("C0REVIEW",))
    with fake.serving() as url:
        assert {_post(url).status_code for _ in range(8)} == {200}
