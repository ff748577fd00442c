"""The project is a real package (issue 14): a wheel built from the source installs into a fresh venv
outside the checkout, where `scanner scan 1d all demo`, `scanner --help` and `python -m scanner` work
and the library imports from the installed files; `pip install -e .` works too.

Slow (a venv and an install from the configured package index, about a minute): marked ``slow``,
and CI runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from scanner import __version__

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("breakout_vsa", "custom_strategies", "exchanges", "scanner", "utils")
NOT_SHIPPED = ("tests", "bench", "state")
# Left out of the copy the wheel is built from: what a working checkout may hold besides the source.
COPY_IGNORE = shutil.ignore_patterns(
    ".git", "__pycache__", "*.pyc", ".venv", "venv", "build", "dist", "*.egg-info", ".pytest_cache",
    ".hypothesis", ".ruff_cache", ".ipynb_checkpoints", "results", "*.sqlite3",
)
INSTALL_TIMEOUT_S = 900
RUN_TIMEOUT_S = 300

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A wheel built from a copy of the source (with a run's state/ in it) and a fresh venv holding it."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=COPY_IGNORE)
    (source / "state").mkdir(exist_ok=True)
    (source / "state" / "alerts.sqlite3").write_bytes(b"")  # a run's state must not be shipped
    home = root / "home"
    home.mkdir()
    # The user's pip configuration (the package index) stays; the user's state and config do not.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SCANNER_", "PYTHON"))}
    env.update({"XDG_STATE_HOME": str(home / "state"), "XDG_CONFIG_HOME": str(home / "config"),
                "DISABLE_PROGRESS": "1", "SCANNER_ANALYSIS": "process"})
    wheels = root / "wheels"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels), str(source)],
        cwd=root, env=env, timeout=INSTALL_TIMEOUT_S)
    (wheel,) = wheels.glob("*.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=root, env=env)
    python = venv / "bin" / "python"
    # The pinned, tested set as constraints: the same versions the suite runs with.
    run([str(python), "-m", "pip", "install", "--quiet", "-c", str(REPO / "requirements.txt"), str(wheel)],
        cwd=root, env=env, timeout=INSTALL_TIMEOUT_S)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    return {"root": root, "source": source, "wheel": wheel, "venv": venv, "python": python, "env": env,
            "cwd": elsewhere, "home": home}


def test_the_wheel_ships_the_design_packages_and_nothing_else(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    top = {name.split("/")[0] for name in names if not name.startswith("crypto_market_scanner-")}
    assert top == {*SHIPPED, "run_parallel_scanner.py"}
    assert not [n for n in names if n.split("/")[0] in NOT_SHIPPED]
    assert installed["wheel"].name.startswith(f"crypto_market_scanner-{__version__}-")


def test_the_wheel_declares_the_dependencies_of_pyproject(installed):
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        metadata = next(wheel.read(n).decode() for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    requires = [line.removeprefix("Requires-Dist: ") for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    for requirement in declared:
        name = requirement.split(">")[0].split("<")[0].split("=")[0]
        assert any(r.startswith(name) for r in requires), requirement
    assert not any(r.startswith(("jupyter", "matplotlib", "mplfinance")) and "extra ==" not in r for r in requires)


def test_scanner_scan_on_demo_works_from_outside_the_checkout(installed):
    proc = run([str(installed["venv"] / "bin" / "scanner"), "scan", "1d", "all", "demo"],
               cwd=installed["cwd"], env=installed["env"])
    assert "demo 1d:" in proc.stdout and "Summary:" in proc.stdout
    assert not (installed["cwd"] / "state").exists(), "state must not land in the current directory"


def test_scanner_help_and_version_work_installed(installed):
    proc = run([str(installed["venv"] / "bin" / "scanner"), "--help"], cwd=installed["cwd"], env=installed["env"])
    assert "scan" in proc.stdout and "exit codes:" in proc.stdout
    proc = run([str(installed["python"]), "-m", "scanner", "--version"], cwd=installed["cwd"], env=installed["env"])
    assert proc.stdout.strip() == f"scanner {__version__}"


def test_the_library_imports_from_the_installed_package(installed):
    code = (
        "import scanner, run_parallel_scanner, exchanges.links, utils.config as c; "
        "print(scanner.__file__); print(run_parallel_scanner.__file__); print(c.state_db_path())"
    )
    proc = run([str(installed["python"]), "-c", code], cwd=installed["cwd"], env=installed["env"])
    scanner_file, rps_file, state_db = proc.stdout.split()
    site = str(installed["venv"])
    assert scanner_file.startswith(site) and rps_file.startswith(site)
    assert Path(state_db) == installed["home"] / "state" / "crypto-market-scanner" / "alerts.sqlite3"


def test_an_editable_install_imports_from_the_source(installed):
    python = str(installed["python"])
    run([python, "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(installed["source"])],
        cwd=installed["root"], env=installed["env"], timeout=INSTALL_TIMEOUT_S)
    proc = run([python, "-c", "import scanner; print(scanner.__file__)"], cwd=installed["cwd"], env=installed["env"])
    assert proc.stdout.strip().startswith(str(installed["source"]))
