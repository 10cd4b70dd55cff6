"""The layer rules of docs/design.md, read from the source (AST), so the structure cannot rot.

* Imports between the project's modules go one way (the table in ``ALLOWED``), with no cycles.
* No function-local import of a project module (it would hide a cycle).
* No ``_private`` name of a project module used from another module.
"""

from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("rlkit", "envs", "agents", "scripts")

#: envs modules that bridge to Gymnasium (or other suites); the pure envs never import them.
ENV_BRIDGES = ("envs.gymnasium", "envs.host", "envs.adapters", "envs.gymnax_compat")
CONTRACT = (
    "agents.base", "agents.registry", "agents.networks", "agents.presets", "agents.parallel"
)


def layer(module: str) -> str:
    """The layer a module belongs to."""
    if module == "rlkit" or module.startswith("rlkit."):
        return "rlkit"
    if module == "envs":
        return "envs.api"
    if module.startswith("envs."):
        return "envs.bridge" if module.startswith(ENV_BRIDGES) else "envs.pure"
    if module == "agents":
        return "agents.api"
    if module in CONTRACT:
        return "agents.contract"
    for sub in ("runtime", "evaluation", "training"):
        if module == f"agents.{sub}" or module.startswith(f"agents.{sub}."):
            return f"agents.{sub}"
    if module == "agents.runs.files":
        return "agents.runs.files"
    if module == "agents.runs" or module.startswith("agents.runs."):
        return "agents.runs"
    if module == "agents.policy":
        return "agents.policy"
    if module.startswith("agents."):
        return "agents.algorithms"
    if module == "scripts" or module.startswith("scripts."):
        return "scripts"
    raise AssertionError(module)


_ENVS = {"envs.pure", "envs.bridge", "envs.api"}
#: layer -> the layers its modules may import.
ALLOWED = {
    "rlkit": {"rlkit"},
    "envs.pure": {"rlkit", "envs.pure"},
    "envs.bridge": {"rlkit", "envs.pure", "envs.bridge"},
    "envs.api": {"rlkit"} | _ENVS,
    "agents.contract": {"rlkit", "envs.pure", "agents.contract"},
    "agents.algorithms": {"rlkit", "envs.pure", "agents.contract", "agents.algorithms"},
    "agents.runtime": {"rlkit"} | _ENVS | {"agents.contract", "agents.runtime"},
    "agents.runs.files": {"rlkit", "envs.pure"},
    "agents.runs": {"rlkit"} | _ENVS | {"agents.contract", "agents.runs.files", "agents.runs"},
    "agents.policy": {"rlkit", "envs.pure", "agents.contract", "agents.runs.files", "agents.runs"},
    "agents.evaluation": {"rlkit"} | _ENVS | {
        "agents.contract", "agents.runs.files", "agents.runs", "agents.policy", "agents.evaluation"
    },
    "agents.training": {"rlkit"} | _ENVS | {
        "agents.contract", "agents.algorithms", "agents.runtime", "agents.runs.files",
        "agents.runs", "agents.policy", "agents.evaluation", "agents.training",
    },
    "agents.api": {"rlkit"} | _ENVS | {
        "agents.contract", "agents.algorithms", "agents.runtime", "agents.runs.files",
        "agents.runs", "agents.policy", "agents.evaluation", "agents.training",
    },
    "scripts": {"rlkit", "scripts", "agents.api"} | _ENVS | {
        "agents.contract", "agents.algorithms", "agents.runtime", "agents.runs.files",
        "agents.runs", "agents.policy", "agents.evaluation", "agents.training",
    },
}


def _modules() -> dict[str, str]:
    """module name -> file path, for every .py file of the project's packages."""
    out = {}
    for package in PACKAGES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, package)):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__"))]
            for name in filenames:
                if not name.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, name), ROOT)[:-3]
                parts = rel.split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                out[".".join(parts)] = os.path.join(dirpath, name)
    return out


MODULES = _modules()


def _is_project(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _targets(node: ast.AST) -> list[tuple[str, str | None]]:
    """(module, imported name or None) pairs of an import statement, project modules only."""
    out = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if _is_project(alias.name):
                out.append((alias.name, None))
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if _is_project(node.module):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.append((sub, None) if sub in MODULES else (node.module, alias.name))
    return out


def _parse(path: str) -> ast.Module:
    with open(path) as f:
        return ast.parse(f.read(), path)


def _imports(module: str) -> list[tuple[ast.AST, bool, str, str | None]]:
    """(node, at module level, target module, name) for every project import of ``module``."""
    tree = _parse(MODULES[module])
    top = set(map(id, tree.body))
    for stmt in tree.body:  # imports under a module-level try/if count as module level
        if isinstance(stmt, (ast.Try, ast.If)):
            for child in ast.walk(stmt):
                top.add(id(child))
    out = []
    for node in ast.walk(tree):
        for target, name in _targets(node):
            out.append((node, id(node) in top, target, name))
    return out


def test_every_module_has_a_layer():
    assert "agents.training.job" in MODULES and "rlkit" in MODULES
    for module in MODULES:
        assert layer(module) in ALLOWED


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_one_way(module):
    own = layer(module)
    bad = []
    for node, _, target, _ in _imports(module):
        if target not in MODULES:
            bad.append(f"line {node.lineno}: {target} is not a project module")
        elif layer(target) not in ALLOWED[own]:
            bad.append(f"line {node.lineno}: {module} ({own}) imports {target} ({layer(target)})")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_function_local_or_private_imports(module):
    bad = []
    for node, at_top, target, name in _imports(module):
        if not at_top:
            bad.append(f"line {node.lineno}: function-local import of {target}")
        if name is not None and name.startswith("_") and not name.startswith("__"):
            bad.append(f"line {node.lineno}: private name {target}.{name}")
    # Attribute access to a private name of an imported project module: ``core._unknown``.
    tree = _parse(MODULES[module])
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if _is_project(a.name):
                    aliases[a.asname or a.name.split(".")[0]] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module and _is_project(node.module):
            for a in node.names:
                if f"{node.module}.{a.name}" in MODULES:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and aliases[node.value.id] != module
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            bad.append(f"line {node.lineno}: private name {node.value.id}.{node.attr}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {m: {t for _, top, t, _ in _imports(m) if top and t in MODULES and t != m}
             for m in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_rules_catch_a_violation(tmp_path):
    """The checks above can fail: a fake module with each kind of violation is flagged."""
    src = "import agents.training.job\n\ndef f():\n    from rlkit import base\n"
    tree = ast.parse(src)
    found = [(t, id(n) in set(map(id, tree.body))) for n in ast.walk(tree) for t, _ in _targets(n)]
    assert ("agents.training.job", True) in found and ("rlkit.base", False) in found
    assert layer("agents.training.job") not in ALLOWED["agents.algorithms"]
    assert layer("envs.gymnasium") not in ALLOWED["envs.pure"]
