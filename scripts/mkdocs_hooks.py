"""mkdocs hooks: generate the reference and agent pages, and fail the build on a missing name.

Loaded by ``mkdocs.yml`` (``hooks:``). The pages come from ``scripts/docs_reference.py``; nav
entries written ``GENERATED:reference``, ``GENERATED:agents`` and ``GENERATED:results`` in mkdocs.yml
are replaced by the generated pages (and by the results pages that ``scripts/make_results.py render``
wrote), so a new agent, reference page or results page needs no edit of mkdocs.yml.
"""

from __future__ import annotations

import os
import sys

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scripts import docs_reference

_PAGES: dict[str, str] = {}


def _expand(nav, docs_dir: str):
    if isinstance(nav, list):
        return [_expand(item, docs_dir) for item in nav]
    if isinstance(nav, dict):
        return {k: _expand(v, docs_dir) for k, v in nav.items()}
    if nav == "GENERATED:reference":
        return docs_reference.reference_nav()
    if nav == "GENERATED:agents":
        return docs_reference.agents_nav()
    if nav == "GENERATED:results":
        return docs_reference.results_nav(docs_dir)
    return nav


def on_config(config, **kwargs):
    problems = docs_reference.missing_names()
    if problems:
        raise PluginError(
            "the API reference is incomplete (docs/reference.yml):\n  " + "\n  ".join(problems)
        )
    _PAGES.clear()
    _PAGES.update(docs_reference.reference_pages())
    _PAGES.update(docs_reference.agent_pages())
    if config.get("nav"):
        config["nav"] = _expand(config["nav"], config["docs_dir"])
    return config


def on_files(files, config, **kwargs):
    for path, text in _PAGES.items():
        files.append(File.generated(config, path, content=text))
    return files
