from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config) -> None:
    """Under pytest-xdist, each worker keeps to its own share of the cores, and so do the
    runners it starts (they inherit the affinity and size their compute threads by it,
    core.devices.usable_cores): two trainings, each with a thread per core, on the same
    cores fight and run many times slower than one at a time."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker.startswith("gw") or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= count:
        os.sched_setaffinity(0, cores[int(worker[2:]) % count::count])


@pytest.fixture(autouse=True)
def ftui_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own FTUI_HOME (runs), sharing one model cache for speed."""
    home = tmp_path_factory.mktemp("home")
    shared_models = tmp_path_factory.getbasetemp() / "models"
    shared_models.mkdir(exist_ok=True)
    (home / "models").symlink_to(shared_models)
    monkeypatch.setenv("FTUI_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None,
            timeout: float = 240) -> subprocess.CompletedProcess:
    """``ftui ARGS`` as a real subprocess with the current environment (FTUI_HOME included)."""
    path = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "ftui", *args], cwd=cwd, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path, **(env or {})}, timeout=timeout,
    )


def write_jsonl(path: Path, rows: list) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny Llama folder, built once per test session (see tests/tiny.py)."""
    from tiny import build_tiny_model

    base = tmp_path_factory.getbasetemp()
    old = os.environ.get("FTUI_HOME")
    os.environ["FTUI_HOME"] = str(base / "tiny-home")
    (base / "tiny-home").mkdir(exist_ok=True)
    models = base / "models"
    models.mkdir(exist_ok=True)
    link = base / "tiny-home" / "models"
    if not link.exists():
        link.symlink_to(models)
    try:
        return build_tiny_model(base / "tiny-llama")
    finally:
        if old is None:
            del os.environ["FTUI_HOME"]
        else:
            os.environ["FTUI_HOME"] = old
