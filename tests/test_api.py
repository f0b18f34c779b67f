"""The public surface: __all__, no heavy imports, and the README's snippets run as written."""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
import textwrap
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


QUOTE = re.compile(r"```python\n# (npevograd/\S+\.py), ([\w.]+)\n(.*?)```", flags=re.S)
CITED_TEST = re.compile(r"tests/(\w+\.py)::(\w+)")


def _definitions(source: str) -> dict[str, tuple[int, int]]:
    """Qualified name (``f``, ``Class.method``) -> (first, last) line of every def and class in ``source``."""
    spans: dict[str, tuple[int, int]] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                spans.setdefault(name, (child.lineno, child.end_lineno or child.lineno))
                visit(child, name + ".")

    visit(ast.parse(source), "")
    return spans


def _function_lines(source: str, qualname: str, cache: dict[str, dict[str, tuple[int, int]]]) -> list[str] | None:
    """The source lines of ``qualname``, comments included; None if there is no such definition."""
    if source not in cache:
        cache[source] = _definitions(source)
    span = cache[source].get(qualname)
    return None if span is None else source.splitlines()[span[0] - 1 : span[1]]


def _is_contiguous_slice(quote: list[str], lines: list[str]) -> bool:
    """True if ``quote`` equals some run of consecutive ``lines``, up to one common indentation."""
    quote = textwrap.dedent("\n".join(quote)).splitlines()
    for start in range(len(lines) - len(quote) + 1):
        window = textwrap.dedent("\n".join(lines[start : start + len(quote)])).splitlines()
        if window == quote:
            return True
    return False


def derivations_errors(doc: str, root: Path) -> list[str]:
    """Every way docs/derivations.md has drifted from the code and tests under ``root``.

    A quote is a python block whose first line is ``# <path>, <function or Class.method>``;
    its body must be a contiguous slice of that function's source, comments included.
    Every ``tests/<file>.py::<name>`` cited must be a test function in that file, and
    every test named in the doc must be cited with its file.
    """
    errors = []
    cache: dict[str, dict[str, tuple[int, int]]] = {}
    quotes = QUOTE.findall(doc)
    if len(quotes) < 5:
        errors.append(f"expected at least 5 code quotes, found {len(quotes)}")
    for path, qualname, body in quotes:
        file = root / path
        if not file.is_file():
            errors.append(f"{path}: no such file")
            continue
        lines = _function_lines(file.read_text(), qualname, cache)
        if lines is None:
            errors.append(f"{path}: no function {qualname}")
        elif not _is_contiguous_slice(body.rstrip("\n").splitlines(), lines):
            errors.append(f"{path}, {qualname}: the quote is not a contiguous slice of its source:\n{body}")
    for file_name, test_name in CITED_TEST.findall(doc):
        file = root / "tests" / file_name
        if not file.is_file() or _function_lines(file.read_text(), test_name, cache) is None:
            errors.append(f"tests/{file_name}::{test_name} does not exist")
    cited = {name for _, name in CITED_TEST.findall(doc)}
    for name in set(re.findall(r"\btest_\w+(?!\w|\.py)", doc)) - cited:
        errors.append(f"{name} is named without its file (write tests/<file>.py::{name})")
    return errors


def test_derivations_quote_the_code_verbatim():
    """Each quote in docs/derivations.md is a contiguous slice of the function it names; cited tests exist."""
    assert derivations_errors((ROOT / "docs" / "derivations.md").read_text(), ROOT) == []


def _copy_tree(tmp_path: Path) -> Path:
    for sub in ("npevograd", "tests"):
        shutil.copytree(ROOT / sub, tmp_path / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _swap_first_two_lines_of_quote(doc: str, header: str) -> str:
    start = doc.index(header) + len(header) + 1
    first_end = doc.index("\n", start)
    second_end = doc.index("\n", first_end + 1)
    first, second = doc[start:first_end], doc[first_end + 1 : second_end]
    return doc[:start] + second + "\n" + first + doc[second_end:]


VARIANCE_HEADER = "# npevograd/estimators/objectives.py, Variance.weights"
VARIANCE_LINE = "        w = z_norm2 / n\n"


def _move_variance_line_into_dead_helper(root: Path) -> None:
    code = root / "npevograd" / "estimators" / "objectives.py"
    source = code.read_text()
    assert VARIANCE_LINE in source
    source = source.replace(VARIANCE_LINE, "        w = z_norm2 / (n - 1)\n", 1)
    code.write_text(source + "\n\ndef _dead(z_norm2, n):\n" + VARIANCE_LINE + "        return w\n")


MUTATIONS = {
    "wrong function name in a header": lambda doc, root: doc.replace(
        VARIANCE_HEADER, "# npevograd/estimators/objectives.py, Mean.weights", 1
    ),
    "false comment inside a quote": lambda doc, root: doc.replace("# ||z_i||^2\n", "# ||z_i||\n", 1),
    "two quoted lines swapped": lambda doc, root: _swap_first_two_lines_of_quote(doc, VARIANCE_HEADER),
    "quoted line moved into a dead helper": lambda doc, root: _move_variance_line_into_dead_helper(root) or doc,
    "cited test renamed": lambda doc, root: doc.replace("::test_", "::test_no_such_", 1),
    "test named without its file": lambda doc, root: doc + "\nSee `test_every_name_in_all_resolves`.\n",
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_derivations_check_catches(mutation, tmp_path):
    """Each mutation, applied to a copy of the doc and code, makes the drift check fail."""
    root = _copy_tree(tmp_path)
    doc = (ROOT / "docs" / "derivations.md").read_text()
    assert VARIANCE_HEADER in doc and "# ||z_i||^2\n" in doc
    assert derivations_errors(doc, root) == []  # the copy is clean before the mutation
    mutated = MUTATIONS[mutation](doc, root)
    assert mutated != doc or mutation == "quoted line moved into a dead helper"
    assert derivations_errors(mutated, root) != []
