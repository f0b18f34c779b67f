"""The public surface: __all__, no heavy imports, and the README's snippets run as written."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

import npevograd as ng

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = {"torch": "torch", "evograd": "evograd", "dask": "dask.distributed", "matplotlib": "matplotlib"}


def test_every_name_in_all_resolves():
    assert ng.__all__ == sorted(ng.__all__)
    for name in ng.__all__:
        assert getattr(ng, name) is not None, name


def test_import_pulls_in_neither_torch_nor_other_heavy_modules():
    code = "import sys, npevograd; print(sorted(m for m in ('torch', 'dask', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def _readme_snippets() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_two_setup_commands_with_the_ci_test_command():
    text = (ROOT / "README.md").read_text()
    bash = re.findall(r"```bash\n(.*?)```", text, flags=re.S)[0]
    commands = [line.split("#")[0].strip() for line in bash.splitlines() if line.strip()]
    assert commands == ['pip install -e ".[demos]" && python demos/run_all.py', 'pip install -e ".[test]" && pytest']
    assert 'pip install -e ".[test]" && pytest' in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("index", range(len(_readme_snippets())))
def test_readme_snippet_runs_as_written(index, tmp_path, monkeypatch):
    snippet = _readme_snippets()[index]
    for module, spec in OPTIONAL.items():
        if re.search(rf"^\s*(import|from) {module}\b", snippet, flags=re.M) and not _importable(spec):
            pytest.skip(f"README snippet needs {spec}")
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet, f"README.md snippet {index}", "exec"), {"__name__": "__readme__"})


def test_derivations_quote_the_code_verbatim():
    """Each code excerpt in docs/derivations.md names its file; every line's code must still be in it."""

    def code(line: str) -> str:  # the line without its trailing comment
        return line.split("  #")[0].strip()

    text = (ROOT / "docs" / "derivations.md").read_text()
    excerpts = re.findall(r"```python\n# (npevograd/\S+), \S+\n(.*?)```", text, flags=re.S)
    assert len(excerpts) >= 5
    for path, body in excerpts:
        source = {code(line) for line in (ROOT / path).read_text().splitlines()}
        for line in body.strip().splitlines():
            assert code(line) in source, f"{path}: {code(line)!r} is no longer in the code"
