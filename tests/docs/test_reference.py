"""The API reference is complete, and (when mkdocs is installed) the site builds in strict mode."""

from __future__ import annotations

import copy
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from scripts import docs_reference
import pytest

# One site build and one pool of page runs per session: keep these tests on one worker.
pytestmark = pytest.mark.xdist_group("docs")


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


def test_site_builds_in_strict_mode(built_site):
    """The build (strict: a broken link or a missing name fails it) has the generated pages."""
    assert (built_site / "reference" / "value-learning" / "index.html").exists()
    assert (built_site / "agents" / "dqn" / "index.html").exists()


def test_every_tutorial_and_results_page_is_in_the_site_nav(built_site):
    """The nav lists every tutorial page and every results page (the latter generated)."""
    home = (built_site / "index.html").read_text()
    for page in sorted(os.listdir(os.path.join(ROOT, "docs", "tutorials"))):
        if page.endswith(".md") and page != "index.md":
            assert f'href="tutorials/{page[:-3]}/"' in home, page
    for page in sorted(os.listdir(os.path.join(ROOT, "docs", "results"))):
        if page.endswith(".md") and page != "index.md":
            assert f'href="results/{page[:-3]}/"' in home, page


def test_results_nav_lists_the_results_pages(tmp_path):
    (tmp_path / "results").mkdir()
    for name in ("index", "ppo", "a2c"):
        (tmp_path / "results" / f"{name}.md").write_text("# x\n")
    (tmp_path / "results" / "figures").mkdir()
    assert docs_reference.results_nav(str(tmp_path)) == [
        "results/index.md",
        {"a2c": "results/a2c.md"},
        {"ppo": "results/ppo.md"},
    ]
