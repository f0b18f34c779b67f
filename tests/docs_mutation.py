"""Mutation run for docs/derivations.md and docs/reuse.md: do the doc tests catch single random edits?

    PYTHONPATH=. python tests/docs_mutation.py [--n 200] [--seed 0]

Each mutation is one edit of one of the two documents: a digit of a number (in a formula, a table or the
prose, outside code) replaced by another digit, or a sign (+ or -) inside a formula flipped. Every check
that reads the documents (``tests/test_docs_claims.py::doc_failures``: the generated tables, the display
formulas' checks, the arithmetic, the computed prose numbers, the reviewed ledger, the rendering census)
runs on the mutated text. The run prints how many edits were caught, and how many of those were caught
by a check of the content (a table, a formula, a computed number) rather than only by the ledger's pin.
Not collected by pytest (no ``test_`` prefix); the expensive tables are computed once.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_docs  # noqa: E402
import test_docs_claims as claims  # noqa: E402


def targets(text: str) -> list[tuple[int, str]]:
    """(position, kind) of every editable character: digits outside code, signs inside math."""
    found, in_fence, offset, open_tick = [], None, 0, None
    for line in text.split("\n"):
        if open_tick is None and line.startswith("```"):
            in_fence = line[3:].strip() if in_fence is None else None
        elif in_fence == "math":
            found += [(offset + m.start(), "digit") for m in re.finditer(r"\d", line)]
            found += [(offset + m.start(), "sign") for m in re.finditer(r"[+-]", line)]
        elif in_fence is None and not re.fullmatch(r"\|(---\|)+", line):
            spans, open_tick_next = test_docs.math_spans(line, open_tick)
            code = [m.span() for m in re.finditer(r"`[^`$]*`", line.replace("$`", "$\0").replace("`$", "\0$"))]
            links = [m.span() for m in re.finditer(r"\]\([^)]*\)", line)]
            for m in re.finditer(r"\d", line):
                if not any(a <= m.start() < b for a, b in code + links):
                    found.append((offset + m.start(), "digit"))
            for a, b, _ in spans:
                found += [(offset + a + 2 + m.start(), "sign") for m in re.finditer(r"[+-]", line[a + 2 : b - 2])]
            open_tick = open_tick_next
        offset += len(line) + 1
    return found


def mutate(text: str, position: int, kind: str, rng: np.random.Generator) -> str:
    old = text[position]
    if kind == "sign":
        new = "-" if old == "+" else "+"
    else:
        new = str(rng.choice([d for d in "0123456789" if d != old]))
    return text[:position] + new + text[position + 1 :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="number of single edits (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show-pinned", action="store_true", help="print the edits only the ledger's pin caught")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    texts = claims.texts_now()
    ledger = claims.LEDGER.read_text().split("\n")
    assert claims.doc_failures(texts, ledger) == [], "the documents must pass before they are mutated"
    pool = [(name, position, kind) for name, text in texts.items() for position, kind in targets(text)]
    caught = by_content = 0
    missed = []
    for index in rng.choice(len(pool), size=args.n, replace=False):
        name, position, kind = pool[index]
        mutated = dict(texts)
        mutated[name] = mutate(texts[name], position, kind, rng)
        failures = claims.doc_failures(mutated, ledger)
        if failures:
            caught += 1
            content = any(
                not failure.startswith(("not in the reviewed ledger", "in the ledger, not")) for failure in failures
            )
            by_content += content
            if args.show_pinned and not content:
                line = texts[name][:position].count("\n") + 1
                print(f"pinned only: {name}.md:{line}: {texts[name].split(chr(10))[line - 1][:100]!r}")
        else:
            line = texts[name][:position].count("\n") + 1
            missed.append(f"{name}.md:{line}: {texts[name].split(chr(10))[line - 1]!r}")
    digits = sum(kind == "digit" for *_, kind in pool)
    print(f"{len(pool)} editable places ({digits} digits, {len(pool) - digits} signs)")
    print(
        f"caught {caught}/{args.n} single random edits; {by_content} of them by a check of the content, "
        f"{caught - by_content} only by the ledger's pin"
    )
    for miss in missed:
        print("missed:", miss)
    return 0 if caught == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
