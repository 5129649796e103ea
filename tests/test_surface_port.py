"""The decision-surface seam (api/surfaces): a third surface, registered as Slack and the console
are, is told a request's whole life and decides through the one `Decisions.decide`; the Authority
that refuses a stranger there is the one Slack refuses them with; and `api` never imports `bot`."""

import ast
from pathlib import Path

from sqlalchemy import select, update

from api.approvals.events import Event
from api.approvals.models import Approval, Decision
from api.audit.models import AuditEvent
from api.connections import service as connections
from api.db import Base
from api.main import build_container, create_app, running
from tests.fake_surface import WITH_FAKE, FakeSurface
from tests.fakes.stripe import FakeStripe
from tests.slack_helpers import APPROVER, GROUP, GROUP_MEMBER, PAYOUT, STRANGER, has_buttons, slack_harness

API = Path(__file__).resolve().parents[1] / "api"


def fake_of(container) -> FakeSurface:
    surface = container.surface("fake")
    assert isinstance(surface, FakeSurface)
    return surface


async def refusals(container, approval_id: str) -> list[AuditEvent]:
    async with container.db.read() as session:
        rows = await session.scalars(select(AuditEvent).where(AuditEvent.approval_id == approval_id,
                                                              AuditEvent.event == "decision.refused"))
        return list(rows.all())


async def test_a_registered_surface_is_told_a_requests_life_and_decides_through_the_port(make_settings, clock):
    import httpx

    with FakeStripe() as stripe:
        charge = stripe.add_charge(amount=34900, currency="usd")
        settings = make_settings(stripe_secret_key="sk_test_cheqpoint", stripe_api_base=stripe.url,
                                 approvers=["UALICE", "UBOB"])
        container = build_container(settings, clock=clock, surfaces=WITH_FAKE)
        fake = fake_of(container)
        async with running(container, worker=False):
            assert fake.lifecycle == ["start"]
            app = create_app(settings, container=container)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
                created = await container.db.write(lambda s: connections.create(s, "billing-agent"))
                agent = {"Authorization": f"Bearer {created.key}"}
                body = {"action": "issue_refund", "summary": "Refund a duplicate charge",
                        "details": {"charge_id": charge["id"], "amount_cents": 34900, "currency": "usd"}}
                response = await http.post("/v1/approvals", json=body, headers=agent)
                assert response.status_code == 202, response.text
                approval_id = response.json()["approvalId"]
                await container.db.write(lambda s: s.execute(update(Approval).where(Approval.id == approval_id)
                                                             .values(required_approvals=2)))

                # Alice lowers the amount (a new revision, her vote on it), Bob approves that revision.
                first = await http.post(f"/fake/{approval_id}/decide", json={
                    "person": "UALICE", "verdict": "approve", "edits": {"amount_cents": 17450}, "revision": 1})
                assert first.json() == {"outcome": "vote", "status": "pending", "revision": 2}, first.text
                stale = await http.post(f"/fake/{approval_id}/decide",
                                        json={"person": "UBOB", "verdict": "approve", "revision": 1})
                assert stale.json()["outcome"] == "stale"  # the core's version check, not the surface's
                second = await http.post(f"/fake/{approval_id}/decide",
                                         json={"person": "UBOB", "verdict": "approve", "revision": 2})
                assert second.json() == {"outcome": "decided", "status": "approved", "revision": 2}
                await container.worker.drain()  # stripe.execute
                final = (await http.get(f"/v1/approvals/{approval_id}", headers=agent)).json()
                async with container.db.read() as session:
                    votes = (await session.scalars(select(Decision).where(Decision.approval_id == approval_id)
                                                   .order_by(Decision.id))).all()
                assert [(v.actor_id, v.revision, v.via) for v in votes] == [
                    ("UALICE", 2, {"surface": "fake"}), ("UBOB", 2, {"surface": "fake"})]
        assert fake.lifecycle == ["start", "close"]

    assert final["execution"]["status"] == "succeeded"
    assert [r.params.get("amount") for r in stripe.requests if r.method == "POST"] == ["17450"]
    assert fake.events(approval_id) == [Event.CREATED, Event.VOTE, Event.REVISED, Event.APPROVED, Event.EXECUTED]
    assert all(isinstance(event, Event) and in_transaction for _, event, _, in_transaction in fake.told)


async def test_a_stranger_is_refused_by_the_authority_slack_uses_and_a_group_member_decides(make_settings, clock):
    async with slack_harness(make_settings, clock, surfaces=WITH_FAKE) as slack:
        approval_id = (await slack.request(PAYOUT))["approvalId"]
        await slack.settle()  # the review message is posted
        assert slack.container.authority.groups is not None  # Slack gave the core its user groups

        refused = await slack.http.post(f"/fake/{approval_id}/decide",
                                        json={"person": STRANGER, "verdict": "approve"})
        assert refused.status_code == 403
        assert refused.json()["type"].endswith("/not-an-approver")
        await slack.click("approve", approval_id, user=STRANGER)  # the same person, in Slack
        assert any("Only approvers" in text for text in slack.ephemerals_to(STRANGER))

        by_fake, by_slack = await refusals(slack.container, approval_id)
        assert by_fake.actor["via"] == {"surface": "fake"} and "via" not in by_slack.actor
        assert by_fake.detail["why"] == by_slack.detail["why"] == \
            f"{STRANGER} is not among the approvers ({APPROVER}, {GROUP})"
        assert (await slack.approval(approval_id))["status"] == "pending"

        # A member of the Slack user group may decide anywhere: groups are expanded by the one Authority.
        decided = await slack.http.post(f"/fake/{approval_id}/decide",
                                        json={"person": GROUP_MEMBER, "verdict": "approve"})
        assert decided.json()["outcome"] == "decided", decided.text
        await slack.settle()
        assert not has_buttons(await slack.message(approval_id))  # Slack shows the decision made elsewhere
        async with slack.container.db.read() as session:
            vote = (await session.scalars(select(Decision).where(Decision.approval_id == approval_id))).one()
        assert (vote.actor_id, vote.via) == (GROUP_MEMBER, {"surface": "fake"})


def bot_imports(source: str) -> list[str]:
    """Each `import bot…` / `from bot… import` in the source (relative imports cannot reach `bot`)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "bot"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "bot":
            found.append(node.module or "")
    return found


def test_the_core_never_imports_the_slack_package():
    assert bot_imports("import json\nif True:\n    from bot.models import Claim\n") == ["bot.models"]  # it can see one
    offenders = {str(path.relative_to(API.parent)): hits for path in sorted(API.rglob("*.py"))
                 if (hits := bot_imports(path.read_text()))}
    assert offenders == {}


def test_the_registry_brings_the_surfaces_tables_to_the_metadata():
    import api.models  # noqa: F401  (what Alembic's env imports)

    assert {"slack_claims", "slack_digests", "slack_digest_items"} <= set(Base.metadata.tables)
