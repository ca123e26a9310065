"""The lecture's notebooks: committed clean, listed in their README, each section naming its slide, and each
running top to bottom in time.

Each notebook is executed by nbclient (Jupyter's own runner, as `jupyter nbconvert --execute` uses) in
a fresh kernel whose working directory is an empty temporary folder: a notebook must read only
built-in data and write only into temporary directories, and the test checks that it left the folder
empty. The time limit holds for the whole notebook, not for each cell.
"""

import os
import pathlib
import re
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS_DIR = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
NAME = re.compile(r"\d\d_[a-z0-9_]+\.ipynb")
# Each notebook aims at 45 s alone on 2 CPU cores; `make test` runs two at once (-n 2) beside the other
# tests, hence the margin. DLIMAGING_NOTEBOOK_TIMEOUT overrides it (seconds) on a slower machine.
TIME_LIMIT = float(os.environ.get("DLIMAGING_NOTEBOOK_TIMEOUT", 180))
CLEAR = "python -m nbconvert --clear-output --inplace notebooks/*.ipynb"


def _ids(paths):
    return [path.name for path in paths]


def test_notebooks_are_named_in_order_and_listed_in_their_readme():
    readme = (NOTEBOOKS_DIR / "README.md").read_text()
    for path in NOTEBOOKS:
        assert NAME.fullmatch(path.name), f"{path.name}: notebooks are named NN_topic.ipynb"
        assert f"({path.name})" in readme, f"{path.name} is not linked from notebooks/README.md"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.cells, f"{path.name} is empty"
    dirty = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
             and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs or execution counts; clear them with `{CLEAR}`"
    assert any(cell.cell_type == "code" for cell in notebook.cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_each_section_names_the_lecture_slide_it_follows(path):
    notebook = nbformat.read(path, as_version=4)
    sections = [cell.source for cell in notebook.cells
                if cell.cell_type == "markdown" and re.search(r"^## ", cell.source, flags=re.M)]
    assert sections, f"{path.name} has no '## ' sections"
    unnamed = [text.splitlines()[0] for text in sections if not re.search(r"slide|lecture", text, flags=re.I)]
    assert not unnamed, f"{path.name}: these sections do not name the lecture slide they follow: {unnamed}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_top_to_bottom_in_time(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    deadline = time.monotonic() + TIME_LIMIT
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}},
        # The limit is the notebook's: each cell gets what the cells before it left.
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic()) + 1),
    )
    start = time.monotonic()
    try:
        client.execute()
    except nbclient.exceptions.CellTimeoutError:
        pytest.fail(f"{path.name} did not finish within {TIME_LIMIT:.0f} s")
    # A CellExecutionError (an exception or a failed assert in a cell) fails the test with the
    # cell's source and traceback, as nbclient formats them.
    elapsed = time.monotonic() - start
    assert elapsed <= TIME_LIMIT, f"{path.name} took {elapsed:.0f} s (limit {TIME_LIMIT:.0f} s)"
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not left, f"{path.name} wrote {left} into its working directory; write into a temporary directory"
