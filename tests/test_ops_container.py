"""The image and compose file, checked without building (Docker is not needed for the suite): the
server is PID 1 in exec form, the user is numeric and not root, dependencies come from the hashed lock
in a layer of their own, and the compose topology is the documented one. `docker compose config`
validates the file where Docker Compose is installed."""

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_the_image_runs_the_server_as_pid_1_as_a_numeric_user():
    steps = _instructions()
    assert [k for k, _ in steps].count("FROM") == 2  # build stage and run stage
    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM"):]
    entry = [v for k, v in final if k == "ENTRYPOINT"]
    cmd = [v for k, v in final if k == "CMD"]
    assert entry == ['["cheqpoint"]'] and cmd == ['["serve"]']  # exec form: no shell in between
    [user] = [v for k, v in final if k == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and uid != "0"
    [health] = [v for k, v in final if k == "HEALTHCHECK"]
    assert "--start-period=" in health and "/healthz" in health
    assert not any("db upgrade" in v for k, v in final if k in ("CMD", "ENTRYPOINT", "RUN"))  # its own step


def test_dependencies_come_from_the_lock_before_the_sources():
    steps = _instructions()
    copies = [v for k, v in steps if k in ("COPY", "RUN")]
    lock = next(i for i, v in enumerate(copies) if "requirements.lock" in v and v.startswith("requirements"))
    install = next(i for i, v in enumerate(copies) if "--require-hashes" in v)
    sources = next(i for i, v in enumerate(copies) if v.startswith("api "))
    assert lock < install < sources
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests", ".env"} <= set(ignored)


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    text = (ROOT / "requirements.lock").read_text()
    for block in text.replace("\\\n", " ").splitlines():
        block = block.strip()
        if not block or block.startswith("#"):
            continue
        name, _, rest = block.partition("==")
        version = rest.split()[0]
        assert "--hash=sha256:" in rest, f"{name} is pinned without a hash"
        pins[canonicalize_name(name)] = version
    return pins


def test_the_lock_pins_every_dependency_within_pyproject_s_ranges():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _locked()
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["postgres"]]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {requirement}"
    assert "mcp" not in pins  # an extra, not in the server's image
    assert project["license"] == {"text": "Apache-2.0"} and (ROOT / "LICENSE").read_text().startswith(
        "\n                                 Apache License")


def test_compose_has_postgres_a_migration_step_two_replicas_and_a_worker():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker"]["command"] == ["worker"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert "8000" in services["proxy"]["ports"][0]
    assert services["api"]["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")


def test_docker_compose_config_accepts_the_file():
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("Docker Compose is not installed here")
    checked = subprocess.run([docker, "compose", "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
                             capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert checked.returncode == 0, checked.stderr
