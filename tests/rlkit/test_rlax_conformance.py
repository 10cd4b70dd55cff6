"""rlax 0.1.9's own unit tests, run unchanged against rlkit.

At test time this builds, in a temporary directory, a stand-in package named `rlax` whose
`rlax`, `rlax._src` and every `rlax._src.<module>` resolve their names in rlkit (the module of
the same area first, then the flat `rlkit` namespace). Only `rlax._src.test_utils` is the
installed wheel's own file, since it is test infrastructure, not an rlax primitive. The test
files themselves are read from the installed rlax wheel (`site-packages/rlax/_src/*_test.py`,
plus the top-level `rlax_test.py`), located with `importlib.util.find_spec("rlax")` before the
shim exists, copied into the temporary directory (never into this repository), and run by pytest
in a subprocess whose `sys.path` starts with the shim. A conftest in that directory asserts that
`rlax` really is the shim (its `__file__` and a sentinel) and that `rlax.batched_index` is
`rlkit.batched_index`, so a test cannot silently pass against the real rlax.

Default run (about a quarter of the cases, to keep CI short): chex runs most rlax tests in
four variants (`with_jit`, `without_jit`, `with_device`, `without_device`); only `with_jit`
runs, with the tests that come in a single variant. Also left out of the default run are
`mpo_ops_test`'s `test_optimization*` and `test_mpo_input_axis_order_equivalence*`, which
train a small policy for thousands of steps (about 20 s each here). The default run has 243
tests. The full run (every test and variant: rlax's 737, plus the `with_pmap` variants that run
because the subprocess has four CPU devices, 913 in all) is marked slow:
`pytest -m slow tests/rlkit/test_rlax_conformance.py`.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

import rlkit

SENTINEL = "rlkit-shim-for-rlax-conformance"

# rlax modules whose names live in an rlkit module of a different name.
_ALIASES = {
    "clipping": ("losses",),
    "nonlinear_bellman": ("transforms", "value_learning"),
}

_SHIM_INIT = '''"""Stand-in `rlax` package: every name resolves in rlkit."""
import rlkit as _rlkit
from rlkit import *  # noqa: F401,F403

RLKIT_SHIM_SENTINEL = {sentinel!r}
__version__ = "0.1.9"
__all__ = list(_rlkit.__all__)


def __getattr__(name):
    return getattr(_rlkit, name)
'''

_SHIM_MODULE = '''"""Stand-in `rlax._src.{name}`: names resolve in {sources} then in rlkit."""
import importlib as _importlib

import rlkit as _rlkit

_SOURCES = []
for _source in {sources!r}:
    try:
        _SOURCES.append(_importlib.import_module("rlkit." + _source))
    except ModuleNotFoundError:
        pass
_SOURCES.append(_rlkit)


def __getattr__(name):
    for source in _SOURCES:
        if hasattr(source, name):
            return getattr(source, name)
    raise AttributeError(f"rlkit has no {{name!r}} (asked for as rlax._src.{name}.{{name}})")
'''

_CONFTEST = '''"""Checks that `rlax` is the rlkit shim before any rlax test runs."""
import os

import rlax
import rlax._src.base

import rlkit

_SHIM = os.path.realpath({shim!r})
assert os.path.realpath(rlax.__file__).startswith(_SHIM), rlax.__file__
assert rlax.RLKIT_SHIM_SENTINEL == {sentinel!r}
assert rlax.batched_index is rlkit.batched_index
assert rlax._src.base.batched_index is rlkit.batched_index
'''


def _rlax_dir() -> pathlib.Path:
    spec = importlib.util.find_spec("rlax")
    if spec is None or spec.origin is None:
        pytest.skip("rlax is not installed (it is in the [test] extra)")
    return pathlib.Path(spec.origin).parent


def build_shim(root: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Writes the shim package and copies rlax's tests under `root`; returns (shim, tests)."""
    rlax_dir = _rlax_dir()
    shim = root / "shim"
    src = shim / "rlax" / "_src"
    src.mkdir(parents=True)
    (shim / "rlax" / "__init__.py").write_text(_SHIM_INIT.format(sentinel=SENTINEL))
    (src / "__init__.py").write_text('"""Stand-in rlax._src."""\n')
    for path in sorted((rlax_dir / "_src").glob("*.py")):
        name = path.stem
        if name == "__init__" or name.endswith("_test"):
            continue
        if name == "test_utils":
            shutil.copy(path, src / "test_utils.py")
            continue
        sources = _ALIASES.get(name, (name,))
        (src / path.name).write_text(_SHIM_MODULE.format(name=name, sources=sources))
    tests = root / "tests"
    tests.mkdir()
    for path in sorted((rlax_dir / "_src").glob("*_test.py")) + [rlax_dir / "rlax_test.py"]:
        shutil.copy(path, tests / path.name)
    (tests / "conftest.py").write_text(_CONFTEST.format(shim=str(shim), sentinel=SENTINEL))
    return shim, tests


def run_rlax_tests(
    root: pathlib.Path, extra_args: list[str], timeout: int, files: list[str] | None = None
) -> tuple[str, dict]:
    """Runs rlax's tests against the shim; returns (output, counts from the pytest summary).

    `files` names test files (e.g. `["mpo_ops_test.py"]`) to run instead of all of them.
    """
    shim, tests = build_shim(root)
    repo_root = pathlib.Path(rlkit.__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(shim), str(repo_root)])
    # pop_art_test asks chex for 4 CPU devices; by then JAX's backend has started (the shim
    # imports rlkit, and earlier test files run), so the devices must exist from the start. chex
    # reads the count with `re.match`, so the flag must come first.
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4 --xla_cpu_multi_thread_eigen=false"
    (root / "pytest.ini").write_text("[pytest]\n")
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
        "-c", str(root / "pytest.ini"), "--rootdir", str(root),
        "-W", "ignore::DeprecationWarning", "-W", "ignore::PendingDeprecationWarning",
        *([str(tests / f) for f in files] if files else [str(tests)]), *extra_args,
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = proc.stdout + proc.stderr
    # The summary is pytest's last stdout line that reports counts and a time ("... in 12.3s").
    summaries = [
        line
        for line in proc.stdout.splitlines()
        if re.search(r"\d+ (passed|failed|errors?|skipped|deselected)", line) and " in " in line
    ]
    summary = summaries[-1] if summaries else ""
    counts = {
        kind: int(num)
        for num, kind in re.findall(r"(\d+) (passed|failed|errors?|skipped|deselected)", summary)
    }
    counts["errors"] = counts.pop("error", 0) + counts.pop("errors", 0)
    counts["returncode"] = proc.returncode
    return output, counts


def _check(output: str, counts: dict) -> None:
    failed = counts.get("failed", 0) + counts["errors"] + counts.get("skipped", 0)
    assert counts.get("passed", 0) > 0 and failed == 0, output[-6000:]
    assert counts["returncode"] == 0, output[-6000:]


# Cheap selection: every test case once, the jitted variant where there are several, without
# the long MPO optimisation runs.
_CHEAP = (
    "not without_jit and not with_device and not without_device and not with_pmap"
    " and not test_optimization and not test_mpo_input_axis_order_equivalence"
)


def test_rlax_own_tests_pass_against_rlkit_cheap_variants(tmp_path):
    output, counts = run_rlax_tests(tmp_path, ["-k", _CHEAP], timeout=800)
    _check(output, counts)
    assert counts["passed"] >= 240, output[-3000:]  # the selection has not shrunk by accident


@pytest.mark.slow
def test_rlax_own_tests_pass_against_rlkit_all_variants(tmp_path):
    output, counts = run_rlax_tests(tmp_path, [], timeout=3000)
    _check(output, counts)
    # 737 run with one device; with the four CPU devices set here chex also runs the
    # `with_pmap` variants (913 tests in all with rlax 0.1.9).
    assert counts["passed"] >= 737, output[-3000:]
