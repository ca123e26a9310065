"""Every code block of README.md and docs/*.md runs as shown.

How a page's blocks run:

- The blocks of one page run in order, in one temporary folder per page (the working directory), which
  starts with a copy of `tuning/`: a block may use the files an earlier block of the same page wrote.
- ```python (or ```py) blocks run in this process (`exec`, fresh globals, Keras cleared and seeded).
- ```bash, ```sh and ```shell blocks run as one `bash -e -o pipefail` script: line by line, stopping at
  the first command that fails. `dlimaging` runs this checkout's command line (`dlimaging.cli.main`, in a
  process forked from one that imported TensorFlow already: see SERVER below) and `python` is this
  interpreter. Lines starting with `#` are comments: shown output goes there.
- ```text and ```toml blocks are not code and do not run. Any other fence is refused, so a block can
  never stop running by a change of its language.

What the Markdown can say, in an HTML comment on the line just before a block's opening fence:

- `<!-- exit: N -->`: the shell block must exit with status N, not 0 (its failing command comes last).
- `<!-- not run: REASON -->`: the block does not run; REASON (required) shows as the test's skip reason.
  Kept for what is too slow for the tests (they run a cheaper form) or needs what they do not have
  (docker, a TF Serving server, several hosts).

A python block that imports an optional package that is not installed (tensorflow_serving) is skipped
too, with a reason. The other tests here check the fences, the links (file and anchor), that
docs/index.md lists every page, and that the README stays a README (200 lines at most).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys

import keras
import pytest
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON = {"python", "py"}
SHELL = {"bash", "sh", "shell"}
NOT_CODE = {"text", "toml"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
NOTE = re.compile(r"<!--\s*(?P<key>not run|exit)\s*:\s*(?P<value>.*?)\s*-->")
SHELL_TIMEOUT = 600
ENTRY_POINT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["dlimaging"]


@dataclasses.dataclass
class Block:
    page: str  # "README.md", "docs/data.md"
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    not_run: str | None = None  # the reason
    exit: int = 0

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        if self.not_run is not None:
            return f"not run: {self.not_run}"
        if self.lang in PYTHON:
            for module in re.findall(r"^(?:from|import) ([\w.]+)", self.code, flags=re.M):
                if importlib.util.find_spec(module.split(".")[0]) is None:
                    return f"the optional package for {module} is not installed"
        return None


def name(path: pathlib.Path) -> str:
    return path.relative_to(ROOT).as_posix()


def blocks(path: pathlib.Path) -> list[Block]:
    text = path.read_text()
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        indent = len(match["indent"])
        code = "".join(row[indent:] if row[:indent].isspace() else row
                       for row in match["body"].splitlines(keepends=True))
        block = Block(name(path), line, match["lang"].strip(), code)
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        note = NOTE.fullmatch(before.strip())
        if note and note["key"] == "not run":
            block.not_run = note["value"]
        elif note:
            block.exit = int(note["value"])
        found.append(block)
    return found


ALL = {name(path): blocks(path) for path in PAGES}
RUNNABLE = [page for page, found in ALL.items()
            if any(b.lang in PYTHON | SHELL and b.skip_reason is None for b in found)]
SKIPPED = [b for found in ALL.values() for b in found if b.lang in PYTHON | SHELL and b.skip_reason]


def test_every_fence_is_known_and_every_note_belongs_to_a_code_block():
    for page, found in ALL.items():
        for block in found:
            assert block.lang in PYTHON | SHELL | NOT_CODE, (
                f"{block.where}: ```{block.lang} is neither run ({sorted(PYTHON | SHELL)}) nor text "
                f"({sorted(NOT_CODE)})")
            if block.not_run is not None:
                assert block.not_run, f"{block.where}: `not run` needs its reason"
                assert block.lang in PYTHON | SHELL, f"{block.where}: `not run` before a block that never runs"
            if block.exit:
                assert block.lang in SHELL, f"{block.where}: `exit` is for shell blocks"
        notes = len(NOTE.findall((ROOT / page).read_text()))
        assert notes == sum(b.not_run is not None or b.exit != 0 for b in found), (
            f"{page}: a `not run` or `exit` comment is not on the line just before a code block")


def test_the_docs_have_examples_and_few_blocks_are_not_run():
    runnable = [b for found in ALL.values() for b in found if b.lang in PYTHON | SHELL]
    assert len(runnable) >= 40
    # Minutes-long searches and what needs a TF Serving server or several hosts; each says why.
    assert len([b for b in SKIPPED if b.not_run is not None]) <= 12


# A process that has imported TensorFlow and every dlimaging module, but run no op yet, forks one child
# per `dlimaging` command: the child takes the command's stdin, stdout, stderr, folder and environment,
# runs `dlimaging.cli.main` and exits with its status. A command then starts in well under a second
# rather than the ~8 s of importing TensorFlow, which would make these tests minutes longer.
SERVER = r"""
import importlib, json, os, pkgutil, socket, struct, sys, traceback
import tensorflow, keras, dlimaging
for module in pkgutil.walk_packages(dlimaging.__path__, "dlimaging."):
    if not module.name.endswith("__main__"):
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError:  # an optional package: the command that needs it says so
            pass
entry, name = sys.argv[2].split(":")
main = getattr(importlib.import_module(entry), name)
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[1])
server.listen(1)
print("ready", flush=True)
while True:
    connection, _ = server.accept()
    header, fds, _, _ = socket.recv_fds(connection, 8, 3)
    (size,) = struct.unpack("!Q", header)
    data = b""
    while len(data) < size:
        data += connection.recv(size - len(data))
    request = json.loads(data)
    pid = os.fork()
    if pid == 0:
        server.close()
        connection.close()
        for number, fd in enumerate(fds):
            os.dup2(fd, number)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["dlimaging", *request["argv"]]
        try:
            status = main(request["argv"])
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else (stop.code is not None)
        except BaseException:
            traceback.print_exc()
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status or 0)
    for fd in fds:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    connection.sendall(struct.pack("!i", os.waitstatus_to_exitcode(status)))
    connection.close()
"""

# `dlimaging` in the shell blocks: sends its command to the server; with DLIMAGING_DOCS_FRESH=1 it runs
# the console script's function in a fresh process instead, as the installed `dlimaging` does.
SHIM = r"""#!{python} -S
import json, os, socket, struct, sys
if os.environ.get("DLIMAGING_DOCS_FRESH"):
    code = "import importlib, sys; sys.exit(getattr(importlib.import_module({module!r}), {name!r})())"
    os.execv({python!r}, [{python!r}, "-c", code, *sys.argv[1:]])
client = socket.socket(socket.AF_UNIX)
client.connect({address!r})
data = json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}}).encode()
socket.send_fds(client, [struct.pack("!Q", len(data))], [0, 1, 2])
client.sendall(data)
status = client.recv(4)
sys.exit(struct.unpack("!i", status)[0] if len(status) == 4 else 1)
"""


@pytest.fixture(scope="session")
def shell_env(tmp_path_factory):
    """The environment of the shell blocks: `dlimaging` (this checkout's) and `python` on PATH."""
    folder = tmp_path_factory.mktemp("docs-bin")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               PATH=os.pathsep.join([str(folder), str(pathlib.Path(sys.executable).parent), os.environ["PATH"]]),
               MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="2")
    address = str(folder / "server.sock")
    log = folder / "server.log"
    with log.open("w") as errors:
        server = subprocess.Popen([sys.executable, "-c", SERVER, address, ENTRY_POINT], env=env, stdout=subprocess.PIPE,
                                  stderr=errors, text=True)
    if server.stdout.readline().strip() != "ready":
        server.kill()
        pytest.fail(f"the dlimaging command server did not start:\n{log.read_text()[-3000:]}")
    shim = folder / "dlimaging"
    module, name = ENTRY_POINT.split(":")
    shim.write_text(SHIM.format(python=sys.executable, address=address, module=module, name=name))
    shim.chmod(0o755)
    yield env
    server.kill()
    server.wait()


@pytest.mark.parametrize("page", RUNNABLE)
def test_page_runs(page, tmp_path, monkeypatch, request):
    shutil.copytree(ROOT / "tuning", tmp_path / "tuning")
    monkeypatch.chdir(tmp_path)  # blocks write saved_models/, runs/ and their files here
    for block in ALL[page]:
        if block.lang not in PYTHON | SHELL or block.skip_reason:
            continue
        if block.lang in PYTHON:
            keras.backend.clear_session()
            keras.utils.set_random_seed(0)
            exec(compile(block.code, block.where, "exec"), {"__name__": "__docs__"})
            continue
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.code], cwd=tmp_path,
                              env=request.getfixturevalue("shell_env"), capture_output=True, text=True,
                              timeout=SHELL_TIMEOUT)
        assert done.returncode == block.exit, (
            f"{block.where}: exit {done.returncode}, expected {block.exit}\n"
            f"--- stdout (end)\n{done.stdout[-3000:]}\n--- stderr (end)\n{done.stderr[-3000:]}")


@pytest.mark.parametrize("where", [b.where for b in SKIPPED])
def test_block_not_run(where):
    block = next(b for b in SKIPPED if b.where == where)
    pytest.skip(block.skip_reason)


def test_the_shell_command_line_is_this_checkout(shell_env, tmp_path):
    for fresh in ("", "1"):  # forked from the server, and a process of its own
        done = subprocess.run(["dlimaging", "--help"], env=dict(shell_env, DLIMAGING_DOCS_FRESH=fresh),
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "tune" in done.stdout, done.stderr
    done = subprocess.run(["python", "-c", "import dlimaging; print(dlimaging.__file__)"], env=shell_env,
                          cwd=tmp_path, capture_output=True, text=True, check=True)
    assert pathlib.Path(done.stdout.strip()).is_relative_to(ROOT)


def anchors(path: pathlib.Path):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens, -1, -2 for repeats."""
    text = FENCE.sub("", path.read_text())
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        seen[slug] = seen.get(slug, -1) + 1
        yield slug if seen[slug] == 0 else f"{slug}-{seen[slug]}"


@pytest.mark.parametrize("page", [name(path) for path in PAGES] + ["notebooks/README.md"])
def test_relative_links_point_at_files_and_anchors(page):
    path = ROOT / page
    text = FENCE.sub("", path.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans hold no links
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{page}: the link {target} points at no file"
        if anchor and linked.suffix == ".md":
            assert anchor in set(anchors(linked)), f"{page}: the link {target} points at no heading"


def test_the_index_lists_every_page():
    index = (ROOT / "docs" / "index.md").read_text()
    for path in (ROOT / "docs").glob("*.md"):
        if path.name != "index.md":
            assert f"]({path.name})" in index, f"docs/index.md does not link {path.name}"


def test_the_readme_is_a_readme():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "make demo" in readme and "make test" in readme
    assert "](docs/index.md)" in readme
