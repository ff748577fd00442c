"""The notebook runs top to bottom on the demo exchange, headless, with no network and no token:
from a clone (the checkout as its folder) and from anywhere with the package importable (as after
`pip install ".[notebook]"`). The committed file is clean: no outputs, no widget state, no
nest_asyncio, markdown with real line breaks."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "vsa_and_custom_scanner.ipynb"
TIMEOUT_S = 300


def execute(path: Path, cwd: Path) -> list[dict]:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]


def assert_ran_the_demo_scans(outputs: list[dict]) -> None:
    assert not [out for out in outputs if out.output_type == "error"]
    text = "\n".join(str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", "")) for out in outputs)
    assert "demo 1d:" in text
    assert any("image/png" in out.get("data", {}) for out in outputs), "the chart cell drew no figure"
    assert not [out for out in outputs if "application/vnd.jupyter.widget-view+json" in out.get("data", {})]
    assert not [out for out in outputs if out.get("name") == "stderr" and "Traceback" in out.get("text", "")]
    assert not [out for out in outputs if out.get("name") == "stderr" and "findfont" in out.get("text", "")]


def test_notebook_runs_top_to_bottom_on_demo_from_the_clone(monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)
    assert_ran_the_demo_scans(execute(NOTEBOOK, REPO))


def test_notebook_runs_from_anywhere_with_the_package_importable(monkeypatch, tmp_path):
    monkeypatch.delenv("MPLBACKEND", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # what an install provides; the copy is not in the clone
    copy = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    assert_ran_the_demo_scans(execute(copy, tmp_path))


@pytest.fixture(scope="module")
def committed() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def test_notebook_is_committed_without_outputs(committed):
    assert all(not cell.get("outputs") for cell in committed.cells if cell.cell_type == "code")
    assert all(cell.get("execution_count") is None for cell in committed.cells if cell.cell_type == "code")


def test_notebook_is_committed_without_widget_state(committed):
    assert "widgets" not in committed.metadata


def test_notebook_uses_top_level_await_not_nest_asyncio(committed):
    code = "\n".join(cell.source for cell in committed.cells if cell.cell_type == "code")
    assert "nest_asyncio" not in code
    assert "await run_scan(" in code


def test_notebook_markdown_has_real_line_breaks(committed):
    for cell in committed.cells:
        if cell.cell_type == "markdown":
            assert "\\n" not in cell.source, cell.source[:80]
