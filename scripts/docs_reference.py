"""The generated part of the documentation site: API reference pages, agent pages, completeness.

    python scripts/docs_reference.py check     # every public name has a place in the reference
    python scripts/docs_reference.py list      # the generated pages and what each documents

``docs/reference.yml`` maps pages to modules. From it, ``reference_pages`` writes one Markdown
page per area with a mkdocstrings block (``::: module``) per module, listing the names of its
``__all__`` that the module defines. ``agent_pages`` writes one page per registered agent
(``agents.registered_agents()``): the module docstring (paper and update equations), the config
fields read from the config dataclass (flag, type, default, traced or static, range, docstring:
what ``scripts/train.py --help`` shows) and the presets (``PRESETS``). ``missing_names`` is the
completeness check: every name of ``rlkit.__all__``, ``envs.__all__``, ``agents.__all__`` and of
the ``__all__`` of every public module (no ``_`` in its dotted name) must be documented on some
page; a new agent, module or config field therefore shows up without any list to update, and a
new public name that no page covers is reported by its full path. The mkdocs hook
(``scripts/mkdocs_hooks.py``) calls these while the site builds.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import os
import pkgutil
import sys
import textwrap
import types
from typing import Any

import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import agents
import envs
import rlkit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAPPING = os.path.join(ROOT, "docs", "reference.yml")
PACKAGES = (rlkit, envs, agents)
#: Where generated pages go, relative to docs/.
REFERENCE_DIR = "reference"
AGENTS_DIR = "agents"
#: The results pages (``scripts/make_results.py render`` writes them), relative to docs/.
RESULTS_DIR = "results"


# -- which names are public -----------------------------------------------------------------------


def public_modules() -> list[types.ModuleType]:
    """Every importable module of rlkit, envs and agents with no ``_``-prefixed part in its name."""
    out = []
    for package in PACKAGES:
        out.append(package)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if any(part.startswith("_") for part in info.name.split(".")):
                continue
            out.append(importlib.import_module(info.name))
    return out


def public_names() -> list[tuple[str, str]]:
    """``(module, name)`` for every name in the ``__all__`` of every public module."""
    return [(m.__name__, n) for m in public_modules() for n in getattr(m, "__all__", ())]


def load_mapping(path: str = MAPPING) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def mapped_modules(mapping: dict) -> list[str]:
    return [m for s in mapping["sections"] for p in s["pages"] for m in p["modules"]]


def _identity_matters(obj: Any) -> bool:
    """Whether ``a is b`` identifies the object (not true of small ints, strings, None...)."""
    return not isinstance(obj, (int, float, str, bytes, bool, tuple, frozenset, type(None)))


def owner(obj: Any, listed_in: str, mapped: set[str]) -> str:
    """The module that documents ``obj``: where it was defined when that module is mapped."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    defined = getattr(obj, "__module__", None)
    if _identity_matters(obj) and isinstance(defined, str) and defined in mapped:
        return defined
    return listed_in


def documented_members(module_name: str, mapped: set[str]) -> list[str]:
    """The names of ``module_name``'s ``__all__`` documented on its page (those it owns)."""
    module = importlib.import_module(module_name)
    out = []
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        if isinstance(obj, types.ModuleType):
            continue  # a module is documented by its own entry
        if owner(obj, module_name, mapped) == module_name:
            out.append(name)
    return out


def missing_names(mapping: dict | None = None) -> list[str]:
    """Problems of the reference: public names without a place, unknown or repeated modules.

    Returns:
      One line per problem, e.g. ``"agents.sac.SAC: not in the reference (add agents.sac to a
      page of docs/reference.yml)"``; empty when the reference is complete.
    """
    mapping = mapping or load_mapping()
    listed = mapped_modules(mapping)
    problems = []
    mapped: set[str] = set()
    for m in listed:
        if m in mapped:
            problems.append(f"{m}: listed twice in docs/reference.yml")
        mapped.add(m)
        try:
            importlib.import_module(m)
        except ImportError:
            problems.append(f"{m}: listed in docs/reference.yml but cannot be imported")
    mapped = {m for m in mapped if m in sys.modules}
    documented: dict[str, list[Any]] = {}  # name -> documented objects with that name
    for m in mapped:
        module = sys.modules[m]
        for name in documented_members(m, mapped):
            documented.setdefault(name, []).append(getattr(module, name))
    all_documented = [obj for objs in documented.values() for obj in objs]
    for module_name, name in public_names():
        obj = getattr(sys.modules[module_name], name, None)
        if isinstance(obj, types.ModuleType):
            if obj.__name__ not in mapped and getattr(obj, "__all__", None):
                problems.append(
                    f"{module_name}.{name}: module {obj.__name__} is not in the reference "
                    f"(add it to a page of docs/reference.yml)"
                )
            continue
        if _identity_matters(obj):
            ok = any(obj is d for d in all_documented)
        else:
            ok = any(obj is d or obj == d for d in documented.get(name, ()))
        if not ok:
            where = owner(obj, module_name, mapped | {getattr(obj, "__module__", "")})
            problems.append(
                f"{module_name}.{name}: not in the reference (add {where} to a page of "
                f"docs/reference.yml)"
            )
    return problems


# -- reference pages ------------------------------------------------------------------------------


def _block(identifier: str, options: dict[str, Any]) -> str:
    lines = [f"::: {identifier}", "    options:"]
    for key, value in options.items():
        lines.append(f"      {key}: {json.dumps(value)}")
    return "\n".join(lines)


def reference_pages(mapping: dict | None = None) -> dict[str, str]:
    """``{path under docs/: Markdown}`` for the reference pages and their index."""
    mapping = mapping or load_mapping()
    mapped = set(mapped_modules(mapping))
    pages = {}
    index = ["# API reference", ""]
    for section in mapping["sections"]:
        index += [f"## {section['title']}", ""]
        if section.get("intro"):
            index += [section["intro"], ""]
        for page in section["pages"]:
            path = f"{REFERENCE_DIR}/{page['file']}.md"
            index.append(
                f"- [{page['title']}]({page['file']}.md): "
                + ", ".join(f"`{m}`" for m in page["modules"])
            )
            body = [f"# {page['title']}", ""]
            if section.get("intro"):
                body += [section["intro"], ""]
            for m in page["modules"]:
                members = documented_members(m, mapped)
                body += [
                    _block(
                        m,
                        {
                            "members": members or False,
                            "show_root_heading": True,
                            "show_root_full_path": True,
                            "heading_level": 2,
                        },
                    ),
                    "",
                ]
            pages[path] = "\n".join(body)
        index.append("")
    pages[f"{REFERENCE_DIR}/index.md"] = "\n".join(index)
    return pages


def reference_nav(mapping: dict | None = None) -> list:
    mapping = mapping or load_mapping()
    nav: list = [{"Overview": f"{REFERENCE_DIR}/index.md"}]
    for section in mapping["sections"]:
        nav.append(
            {
                section["title"]: [
                    {p["title"]: f"{REFERENCE_DIR}/{p['file']}.md"} for p in section["pages"]
                ]
            }
        )
    return nav


# -- agent pages ----------------------------------------------------------------------------------


def field_docstrings(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string right after ``name: type = ...``) of ``cls`` and its bases."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, nxt in zip(body, body[1:] + [None]):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                out[stmt.target.id] = " ".join(inspect.cleandoc(nxt.value.value).split())
    return out


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _range(meta: Any) -> str:
    low, high = meta.get("low"), meta.get("high")
    if low is None and high is None:
        return ""
    left = "(" if meta.get("low_open") else "["
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{left}{lo}, {hi}" + ("]" if high is not None else ")")


def config_fields(config_cls: type) -> list[dict[str, str]]:
    """One row per field of an agent's config dataclass: what ``train.py --help`` tells of it."""
    docs = field_docstrings(config_cls)
    defined = {}
    for klass in reversed(config_cls.__mro__):
        for name in getattr(klass, "__annotations__", {}):
            defined.setdefault(name, klass.__name__)
    rows = []
    for f in dataclasses.fields(config_cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        traced = f.metadata.get("pytree_node", True)
        rows.append(
            {
                "flag": "--" + f.name.replace("_", "-"),
                "name": f.name,
                "type": f.type if isinstance(f.type, str) else getattr(f.type, "__name__", f.type),
                "default": repr(default),
                "kind": "traced" if traced else "static",
                "range": _range(f.metadata),
                "doc": docs.get(f.name, ""),
                "defined_in": defined.get(f.name, ""),
            }
        )
    return rows


def agent_page(name: str) -> str:
    """The Markdown page of the registered agent ``name``."""
    cls = agents.get_agent(name)
    module = cls.__module__
    config_cls = cls.Config
    config_path = f"{config_cls.__module__}.{config_cls.__qualname__}"
    lines = [
        f"# {cls.__name__} (`--agent {name}`)",
        "",
        (
            f"Class [`{module}.{cls.__qualname__}`][{module}.{cls.__qualname__}], config "
            f"[`{config_path}`][{config_path}]."
        ),
        "",
        "## Paper and update",
        "",
        _block(module, {"members": False, "show_root_heading": False, "show_source": False}),
        "",
        "## Train it",
        "",
        "```bash",
    ]
    presets = getattr(cls, "PRESETS", {}) or {}
    env_ids = [e for e in presets if e != "default"] or ["CartPole-v1"]
    for env_id in env_ids:
        lines.append(f"python scripts/train.py --agent {name} --env {env_id}")
    lines += [f"python scripts/train.py --agent {name} --help   # every flag", "```", ""]
    lines += [
        f"## Config fields (`{config_cls.__name__}`)",
        "",
        (
            "Traced fields are pytree leaves: `jax.vmap` over a stacked config sweeps them "
            "(`train.py --sweep`). Static fields fix the compiled program. Each field is the "
            "`scripts/train.py` flag shown."
        ),
        "",
        "| flag | type | default | kind | range | description | defined in |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in config_fields(config_cls):
        lines.append(
            f"| `{row['flag']}` | `{_md(row['type'])}` | `{_md(row['default'])}` | {row['kind']} "
            f"| {_md(row['range'])} | {_md(row['doc'])} | `{row['defined_in']}` |"
        )
    lines += ["", "## Presets", ""]
    if presets:
        lines += [
            (
                "A preset is applied when `--env` is one of these ids; flags given on the command "
                "line override it."
            ),
            "",
            "| env | overrides of the defaults |",
            "|---|---|",
        ]
        for env_id, overrides in presets.items():
            text = ", ".join(f"`{k}={v!r}`" for k, v in overrides.items())
            lines.append(f"| {env_id} | {_md(text)} |")
    else:
        lines.append("No presets: the config defaults apply to every env.")
    lines += [
        "",
        "## Results",
        "",
        (
            f"Learning curves and final returns: [results of {cls.__name__}](../results/{name}.md) "
            "(where it has been benchmarked; see the [results overview](../results/index.md))."
        ),
        "",
    ]
    return "\n".join(lines)


def agent_pages() -> dict[str, str]:
    """``{path under docs/: Markdown}``: one page per registered agent and an index."""
    pages = {}
    index = [
        "# Agents",
        "",
        (
            "Every agent registered in `agents.registered_agents()` has a page (generated from its "
            "module docstring, config dataclass and presets)."
        ),
        "",
        "| agent | class | paper and update |",
        "|---|---|---|",
    ]
    for name in agents.registered_agents():
        cls = agents.get_agent(name)
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
        index.append(f"| [`{name}`]({name}.md) | `{cls.__name__}` | {_md(doc[0] if doc else '')} |")
        pages[f"{AGENTS_DIR}/{name}.md"] = agent_page(name)
    pages[f"{AGENTS_DIR}/index.md"] = "\n".join(index) + "\n"
    return pages


def agents_nav() -> list:
    return [{"Overview": f"{AGENTS_DIR}/index.md"}] + [
        {name: f"{AGENTS_DIR}/{name}.md"} for name in agents.registered_agents()
    ]


def results_nav(docs_dir: str = os.path.join(ROOT, "docs")) -> list:
    """The results section of the nav: its index, then one entry per agent page, by name.

    The pages are whatever ``scripts/make_results.py render`` wrote into ``docs/results/``, so an
    agent whose results are added needs no edit of mkdocs.yml.
    """
    folder = os.path.join(docs_dir, RESULTS_DIR)
    names = sorted(
        f[: -len(".md")] for f in os.listdir(folder) if f.endswith(".md") and f != "index.md"
    )
    return [f"{RESULTS_DIR}/index.md"] + [{name: f"{RESULTS_DIR}/{name}.md"} for name in names]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else "check"
    if command == "check":
        problems = missing_names()
        for line in problems:
            print(line)
        n = len(public_names())
        print(f"{n} public names checked: {len(problems)} problem(s)")
        return 1 if problems else 0
    if command == "list":
        for path, text in {**reference_pages(), **agent_pages()}.items():
            print(path, text.count(":::"), "blocks")
        return 0
    print(f"error: unknown command {command!r} (expected check or list)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
