"""Every tutorial page's code runs: its python and bash blocks, in order, in a fresh process.

Each page runs in its own subprocess, in a temporary directory that has ``scripts/`` linked in
(so the pages' ``python scripts/train.py ...`` and ``runs/...`` paths work) and the repository
on ``PYTHONPATH``. A block preceded by ``<!-- test: requires MODULE -->`` is skipped when the
module is not installed. The budgets are the pages' own (small) ones, so what the page shows
is what runs. The pages run side by side (``conftest.py``: the ``docs_jobs`` fixture), each in
its own process.
"""

from __future__ import annotations

import pytest
import tutorial_blocks as tutorials

# One site build and one pool of page runs per session: keep these tests on one worker.
pytestmark = pytest.mark.xdist_group("docs")

PAGES = tutorials.tested_pages()


def test_there_are_tutorials():
    expected = {"port-from-rlax.md", "own-agent.md", "command-line.md", "sweeps.md", "gymnasium.md"}
    assert expected | {"minatar.md", "devices.md"} <= set(PAGES), PAGES


@pytest.mark.parametrize("page", PAGES)
def test_tutorial_runs(page, docs_jobs):
    done = docs_jobs.result(("page", page))
    assert done.returncode == 0, f"{page} failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"


def test_blocks_are_read_in_order_with_requirements():
    text = (
        "intro\n```python\nx = 1\n```\n\n<!-- test: requires numpy, not_a_module -->\n"
        "```bash\necho hi\n```\n```text\nignored\n```\n"
    )
    got = tutorials.blocks(text)
    assert [(b["lang"], b["code"], b["requires"]) for b in got] == [
        ("python", "x = 1\n", []),
        ("bash", "echo hi\n", ["numpy", "not_a_module"]),
    ]
