"""The API reference is complete, and (when mkdocs is installed) the site builds in strict mode."""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from scripts import docs_reference


def test_every_public_name_has_a_place_in_the_reference():
    assert docs_reference.missing_names() == []


def test_a_module_missing_from_the_mapping_is_reported_by_name():
    mapping = copy.deepcopy(docs_reference.load_mapping())
    for section in mapping["sections"]:
        for page in section["pages"]:
            page["modules"] = [m for m in page["modules"] if m != "rlkit.vtrace"]
    problems = docs_reference.missing_names(mapping)
    assert (
        "rlkit.vtrace.vtrace: not in the reference (add rlkit.vtrace to a page of "
        "docs/reference.yml)" in problems
    )
    assert (
        "rlkit.vtrace: not in the reference (add rlkit.vtrace to a page of "
        "docs/reference.yml)" in problems
    )  # the top-level re-export is named too


def test_agent_pages_list_every_config_field_and_preset():
    import agents

    pages = docs_reference.agent_pages()
    for name in agents.registered_agents():
        cls = agents.get_agent(name)
        text = pages[f"agents/{name}.md"]
        for row in docs_reference.config_fields(cls.Config):
            assert f"`{row['flag']}`" in text
        for env_id in cls.PRESETS:
            assert f"| {env_id} |" in text
    dqn = docs_reference.config_fields(agents.DQN.Config)
    lr = next(r for r in dqn if r["name"] == "learning_rate")
    assert lr["kind"] == "traced" and lr["doc"] == "Adam step size."
    n_envs = next(r for r in dqn if r["name"] == "num_envs")
    assert n_envs["kind"] == "static" and n_envs["range"] == "[1, inf)"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs not installed")
def test_site_builds_in_strict_mode(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, NO_MKDOCS_2_WARNING="1")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    assert (tmp_path / "site" / "reference" / "value-learning" / "index.html").exists()
