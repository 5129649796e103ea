"""`cheqpoint policy check | replay` and `cheqpoint serve` with a bad policy, run as separate processes."""

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REFUND
from tests.test_policy_flow import BAD_POLICY, EXAMPLE, VELOCITY, payout, refund, serving

CLI = str(Path(sys.executable).with_name("cheqpoint"))
POLICIES = Path(__file__).parent / "policies"


def cheqpoint(*args: str, database_url: str | None = None, cwd: Path | None = None, timeout: float = 60,
              **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("DATABASE_URL", "SLACK_BOT_TOKEN", "STRIPE_SECRET_KEY", "CHEQPOINT_POLICY_FILE")}
    if database_url:
        environment["DATABASE_URL"] = database_url
    return subprocess.run([CLI, *args], capture_output=True, text=True, env={**environment, **env}, cwd=cwd,
                          timeout=timeout, check=False)


def counts(output: str) -> dict[str, int]:
    """The per-rule table of a replay report: rule name → requests."""
    table = output.split("\n\n")[1].splitlines()[1:]
    return {name.strip(): int(count) for name, count in (re.match(r"(.*?)\s+(\d+)$", row).groups() for row in table)}


def changed(output: str) -> dict[str, tuple[str, str]]:
    """The changed-requests table: approval id → (was, now)."""
    # approval  action  was [(old rule)]  now  rule now
    rows = [re.match(r"(apr_\S+)\s+\S+\s+(\w+)(?: \([^)]*\))?\s+(\w+)", line) for line in output.splitlines()]
    return {row[1]: (row[2], row[3]) for row in rows if row}


# ---- check ---------------------------------------------------------------------------------------------

def test_check_accepts_a_good_file_with_a_summary():
    result = cheqpoint("policy", "check", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    version = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()[:12]
    assert result.stdout == f"{EXAMPLE}: ok, 4 rules, version {version}, 0 warnings\n"
    assert result.stderr == ""


def test_check_prints_warnings_once_and_still_succeeds():
    result = cheqpoint("policy", "check", str(POLICIES / "custom_action.yaml"))
    assert result.returncode == 0
    assert "2 warnings" in result.stdout
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2
    assert warnings[1].startswith(f"warning: {POLICIES / 'custom_action.yaml'}:7: rules[1].actions[0]: ")
    assert "did you mean 'issue_refund'?" in warnings[1]


def test_check_names_every_problem_by_file_and_line(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("defaults:\n"
                   "  approvers: [U012ABCDEF]\n"
                   "rules:\n"
                   "  - name: small\n"
                   "    actions: [issue_refund]\n"
                   "    when: details.amount_cents <=\n"
                   "    decision: approve\n"
                   "  - name: typo\n"
                   "    actions: [issue_refund]\n"
                   "    when: detials.amount_cents > 5\n"
                   "    decision: review\n")
    result = cheqpoint("policy", "check", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{bad}:6: rules[0].when: CEL syntax error at column 24: ")
    assert lines[1] == f"{bad}:10: rules[1].when: undeclared reference to 'detials' (did you mean 'details'?)"
    assert lines[2] == f"{bad}: 2 problems; the service would refuse to start with this file"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("content", "expected"), [
    ("rules:\n  - name: x\n    decision: review\n    required_approvals: 0\n",
     ":4: rules[0].required_approvals: must be at least 1"),
    ("defaults:\n  expires_in: -5m\n", ":2: defaults.expires_in: a duration must be positive, not '-5m'"),
    ("rules:\n  - name: x\n    decision: review\n    colour: red\n", ":4: rules[0].colour: unknown key 'colour'"),
])
def test_check_refuses_each_kind_of_mistake(tmp_path, content, expected):
    bad = tmp_path / "policy.yaml"
    bad.write_text(content)
    result = cheqpoint("policy", "check", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{bad}{expected}")


def test_check_of_a_missing_file_is_a_bad_argument(tmp_path):
    result = cheqpoint("policy", "check", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{tmp_path / 'absent.yaml'}: cannot read the policy file")


# ---- replay --------------------------------------------------------------------------------------------

async def test_replay_shows_what_the_example_policy_would_change(settings, clock, database_url):
    clock.advance(days=-2)  # most of these requests are two days old
    async with serving(settings, clock) as service:  # the built-in policy: everything but lookups reviewed
        ids = {}
        ids["lookup"] = (await service.post({"action": "retrieve_balance", "summary": "Balance", "details": {}},
                                            200))["approvalId"]
        ids["small"] = (await service.post(refund(3000), 202))["approvalId"]
        ids["payout"] = (await service.post(payout(6_000_000), 202))["approvalId"]
        ids["large"] = (await service.post(refund(250_000), 202))["approvalId"]
        ids["plain"] = (await service.post(REFUND, 202))["approvalId"]
        # Decided by a person later: still a request the old policy sent to review.
        await service.container.decisions.decide(ids["plain"], _operator(), "reject", note="No")
        clock.advance(days=2)
        ids["recent"] = (await service.post(refund(4000), 202))["approvalId"]

    result = cheqpoint("policy", "replay", str(EXAMPLE), database_url=database_url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Replayed 6 requests against policy ")
    assert counts(out) == {"read-only lookups": 1, "small duplicate refunds": 2, "very large payouts": 1,
                           "large refunds": 1, "(no rule: defaults)": 1}
    assert "decisions: pass 1, approve 2, reject 1, review 2" in out
    assert changed(out) == {ids["small"]: ("review", "approve"), ids["payout"]: ("review", "reject"),
                            ids["recent"]: ("review", "approve")}
    assert "Outcome would change for 3 requests:" in out

    recent = cheqpoint("policy", "replay", str(EXAMPLE), "--since", "1d", database_url=database_url)
    assert recent.returncode == 0, recent.stderr
    assert recent.stdout.startswith("Replayed 1 request against policy ")
    assert changed(recent.stdout) == {ids["recent"]: ("review", "approve")}


async def test_replay_of_a_policy_on_its_own_decisions_changes_nothing(make_settings, clock, database_url):
    async with serving(make_settings(policy_file=str(EXAMPLE)), clock) as service:
        lookup = (await service.post({"action": "retrieve_balance", "summary": "Balance", "details": {}},
                                     200))["approvalId"]
        small = (await service.post(refund(3000), 200))["approvalId"]
        large_payout = (await service.post(payout(6_000_000), 200))["approvalId"]
        await service.post(refund(250_000), 202)
        await service.post(refund(34_900), 202)
    result = cheqpoint("policy", "replay", str(EXAMPLE), database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert "decisions: pass 1, approve 1, reject 1, review 2" in result.stdout
    assert "No outcome would change." in result.stdout

    # A policy with no rule for lookups or payouts, and a lower bound for small refunds.
    other = cheqpoint("policy", "replay", str(VELOCITY), database_url=database_url)
    assert other.returncode == 0, other.stderr
    assert changed(other.stdout) == {lookup: ("pass", "review"), small: ("approve", "review"),
                                     large_payout: ("reject", "review")}
    assert "approve (small duplicate refunds)" in other.stdout


async def test_replay_recomputes_velocity_totals_as_of_each_request(settings, clock, database_url):
    async with serving(settings, clock) as service:
        ids = []
        for n in range(10):
            ids.append((await service.post(refund(1500, charge=f"ch_{n:04d}AbCdEfGh"), 202))["approvalId"])
            clock.advance(minutes=30)
    result = cheqpoint("policy", "replay", str(VELOCITY), database_url=database_url)
    assert result.returncode == 0, result.stderr
    # Each saw only the ones before it: nine small refunds, then the tenth of the day for that customer.
    assert counts(result.stdout) == {"refund spree": 1, "small refunds": 9, "(no rule: defaults)": 0}
    assert changed(result.stdout) == {approval_id: ("review", "approve") for approval_id in ids[:9]}


@pytest.mark.parametrize("since", ["bogus", "0d", "30", "-1d", "2w"])
def test_replay_refuses_a_bad_since(since, database_url):
    result = cheqpoint("policy", "replay", str(EXAMPLE), "--since", since, database_url=database_url)
    assert result.returncode == 2
    assert "--since takes a positive duration such as 30d, 12h or 90m" in result.stderr


def test_replay_refuses_a_bad_policy_file(tmp_path, database_url):
    bad = tmp_path / "policy.yaml"
    bad.write_text(BAD_POLICY)
    result = cheqpoint("policy", "replay", str(bad), database_url=database_url)
    assert result.returncode == 2
    assert f"{bad}:7: rules[0].when: undeclared reference to 'detials'" in result.stderr


# ---- serve ---------------------------------------------------------------------------------------------

def test_serve_refuses_to_start_on_a_bad_policy_file(tmp_path, database_url):
    bad = tmp_path / "policy.yaml"
    bad.write_text(BAD_POLICY)
    result = cheqpoint("serve", "--port", "0", database_url=database_url, cwd=tmp_path, timeout=30,
                       CHEQPOINT_POLICY_FILE=str(bad))
    assert result.returncode == 2
    assert f"error: {bad}:7: rules[0].when: undeclared reference to 'detials' (did you mean 'details'?)" \
        in result.stderr
    assert "Traceback" not in result.stderr


def _operator():
    from api.approvals.actors import Actor

    return Actor("operator", "UCAROL", "Carol")
