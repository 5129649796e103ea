"""`cheqpoint-client` is its own package: built from `cheqpoint_client/pyproject.toml`, installed into an
empty virtual environment, it brings none of the server (no FastAPI, SQLAlchemy, Stripe, Bolt, no `api` or
`bot`), declares httpx and standardwebhooks only (mcp as an extra), and imports with just those."""

import importlib.metadata as metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SERVER_ONLY = ("fastapi", "sqlalchemy", "stripe", "slack_bolt", "slack_sdk", "alembic", "uvicorn", "api", "bot")


def _build_wheel(tmp_path: Path) -> Path:
    if importlib.util.find_spec("wheel") is None:
        pytest.skip("building a wheel offline needs the `wheel` package (in the test extra)")
    source = tmp_path / "src"
    shutil.copytree(ROOT / "cheqpoint_client", source, ignore=shutil.ignore_patterns("__pycache__", "build"))
    out = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(out), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = out.glob("cheqpoint_client-*.whl")
    return wheel


def _closure(names: list[str]) -> set[str]:
    """Distributions needed by `names`, recursively, for this interpreter (extras left out)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        dist = metadata.distribution(name)
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def _top_level_paths(distributions: set[str]) -> set[Path]:
    paths: set[Path] = set()
    for name in distributions:
        dist = metadata.distribution(name)
        for file in dist.files or []:
            first = file.parts[0]
            if first.endswith((".dist-info", ".pth")) or first == ".." or first.startswith("__"):
                continue
            paths.add(Path(dist.locate_file(first)))
    return paths


def test_the_client_installs_alone_and_imports_with_only_its_declared_dependencies(tmp_path: Path):
    wheel = _build_wheel(tmp_path)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)  # empty; this pip installs into it (`pip --python`)
    python = env_dir / "bin" / "python"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                                "--no-index", str(wheel)], capture_output=True, text=True, env=clean, timeout=300)
    assert installed.returncode == 0, installed.stderr
    assert (env_dir / "bin" / "cheqpoint-mcp").exists()

    def run(code: str, path: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path,
                              env={**clean, "PYTHONPATH": path}, timeout=60)

    declared = run("import importlib.metadata as m; print('\\n'.join(m.requires('cheqpoint-client')))")
    requirements = [Requirement(line) for line in declared.stdout.splitlines()]
    assert {r.name for r in requirements if r.marker is None} == {"httpx", "standardwebhooks"}
    assert {r.name for r in requirements if r.marker is not None} == {"mcp"}
    licence = run("import importlib.metadata as m; print(m.metadata('cheqpoint-client')['License'])")
    assert licence.stdout.strip() == "Apache-2.0"

    # Only httpx and standardwebhooks (and what they need) on the path: the SDK imports, the server does not.
    only_declared = tmp_path / "declared"
    only_declared.mkdir()
    for path in _top_level_paths(_closure(["httpx", "standardwebhooks"])):
        (only_declared / path.name).symlink_to(path)
    probe = ("import importlib.util, cheqpoint_client\n"
             "from cheqpoint_client import Client, AsyncClient, verify_webhook\n"
             f"print([n for n in {SERVER_ONLY!r} if importlib.util.find_spec(n)])")
    imported = run(probe, str(only_declared))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "[]"
    # The MCP server is the extra: without `mcp` it says so, and nothing else is missing.
    mcp = run("import cheqpoint_client.mcp_server", str(only_declared))
    assert "No module named 'mcp'" in mcp.stderr
