"""Reading the code blocks of a tutorial page, and the program that runs them in order."""

from __future__ import annotations

import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TUTORIALS = os.path.join(ROOT, "docs", "tutorials")
#: A page holding this marker is not run by the tests (it says why, next to the marker).
NOT_TESTED = "<!-- tutorial: not tested"
#: Above a block: run it only when these modules can be imported (e.g. stable_baselines3).
REQUIRES = re.compile(r"<!--\s*test:\s*requires\s+([\w., ]+?)\s*-->\s*$")
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)


def tested_pages() -> list[str]:
    """The tutorial pages whose code the tests run (every page of docs/tutorials but the index)."""
    out = []
    for name in sorted(os.listdir(TUTORIALS)):
        if not name.endswith(".md") or name == "index.md":
            continue
        with open(os.path.join(TUTORIALS, name)) as f:
            if NOT_TESTED not in f.read():
                out.append(name)
    return out


def blocks(text: str) -> list[dict]:
    """``[{"lang", "code", "requires", "line"}]`` for the python and bash blocks, in page order."""
    out = []
    for m in FENCE.finditer(text):
        lang = m.group(1)
        if lang not in ("python", "bash"):
            continue
        before = text[: m.start()].rstrip().splitlines()
        req = REQUIRES.search(before[-1]) if before else None
        out.append(
            {
                "lang": lang,
                "code": m.group(2),
                "requires": [r.strip() for r in req.group(1).split(",")] if req else [],
                "line": text[: m.start()].count("\n") + 1,
            }
        )
    return out


DRIVER = """
import importlib.util, subprocess, sys, time
BLOCKS = json.loads({blocks!r})
namespace = {{"__name__": "__main__"}}
for b in BLOCKS:
    missing = [r for r in b["requires"] if importlib.util.find_spec(r) is None]
    where = f"{page}:{{b['line']}}"
    if missing:
        print(f"skipped {{where}} ({{b['lang']}}): needs {{', '.join(missing)}}", flush=True)
        continue
    print(f"running {{where}} ({{b['lang']}})", flush=True)
    t0 = time.perf_counter()
    if b["lang"] == "python":
        exec(compile(b["code"], where, "exec"), namespace)
    else:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", b["code"]])
        if done.returncode:
            sys.exit(f"{{where}}: the bash block exited with status {{done.returncode}}")
    print(f"done {{where}} in {{time.perf_counter() - t0:.1f}} s", flush=True)
"""


def driver(page: str) -> str:
    """A Python program that runs the page's blocks in order, in one namespace."""
    with open(os.path.join(TUTORIALS, page)) as f:
        text = f.read()
    return "import json\n" + DRIVER.format(blocks=json.dumps(blocks(text)), page=page)
