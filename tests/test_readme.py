"""Every ```python block of the README runs as shown."""

import importlib.util
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path, monkeypatch):
    code = BLOCKS[index]
    for module in re.findall(r"^(?:from|import) ([\w.]+)", code, flags=re.M):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            pytest.skip(f"the optional package for {module} is not installed")
    if "insecure_channel" in code:
        pytest.skip("needs a running TF Serving server")
    monkeypatch.chdir(tmp_path)  # snippets write saved_models/ and runs/ here
    exec(compile(code, f"README.md block {index}", "exec"), {"__name__": "__readme__"})
