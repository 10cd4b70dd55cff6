"""The slow work of the docs tests runs once per session, in parallel subprocesses.

Building the site (``mkdocs build --strict``) and running each tutorial page are independent
subprocesses that spend much of their time starting Python, importing JAX and compiling, one core
each. The first test that needs one of them starts all of those the session selected (no more
than ``JOBS`` at a time, the most expensive first), and each test then waits for its own: the
site is built once and shared, and the pages run side by side. Every page still runs in its own
process and its own directory, so no page can lean on another's state. ``RLKIT_DOCS_JOBS=1``
runs them one after another. The wall time of each job is printed at the end of the session.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib.util
import os
import subprocess
import sys
import threading
import time

import pytest
import tutorial_blocks as tutorials

#: Subprocesses at the same time: RLKIT_DOCS_JOBS, else the CPU count (at most 4).
JOBS = int(os.environ.get("RLKIT_DOCS_JOBS") or 0) or max(1, min(4, os.cpu_count() or 1))
#: The site job's key.
SITE = ("site", "mkdocs build")


@dataclasses.dataclass
class Job:
    """One finished subprocess: its return code, output and wall time."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float


class DocsJobs:
    """Runs the selected jobs in a thread pool; ``result(key)`` waits for one."""

    def __init__(self, jobs: int):
        self.pool = concurrent.futures.ThreadPoolExecutor(jobs)
        self.futures: dict[tuple[str, str], concurrent.futures.Future] = {}
        self.procs: list[subprocess.Popen] = []
        self.lock = threading.Lock()
        self.closed = False
        self.site_dir = None

    def submit(self, key: tuple[str, str], argv: list[str], cwd: str, env: dict, timeout: float):
        self.futures[key] = self.pool.submit(self._run, argv, cwd, env, timeout)

    def _run(self, argv: list[str], cwd: str, env: dict, timeout: float) -> Job:
        t0 = time.perf_counter()
        with self.lock:
            if self.closed:
                return Job(-1, "", "the session ended before this job started", 0.0)
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            self.procs.append(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err += f"\n(killed after {timeout} s)"
        return Job(proc.returncode, out, err, time.perf_counter() - t0)

    def result(self, key: tuple[str, str]) -> Job:
        return self.futures[key].result()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            for proc in self.procs:
                if proc.poll() is None:
                    proc.kill()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _page_cost(page: str) -> int:
    """A rough cost for ordering: each command-line program started costs most."""
    with open(os.path.join(tutorials.TUTORIALS, page)) as f:
        found = tutorials.blocks(f.read())
    programs = sum(b["code"].count("python scripts/") for b in found if b["lang"] == "bash")
    return 10 * programs + len(found)


def _selected(session: pytest.Session) -> tuple[bool, list[str]]:
    site, pages = False, []
    for item in session.items:
        names = getattr(item, "fixturenames", ())
        if "built_site" in names:
            site = True
        callspec = getattr(item, "callspec", None)
        if "docs_jobs" in names and callspec is not None and "page" in callspec.params:
            pages.append(callspec.params["page"])
    return site, pages


def _subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = tutorials.ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["MPLBACKEND"] = "Agg"
    env["NO_MKDOCS_2_WARNING"] = "1"
    return env


_JOBS: list[DocsJobs] = []


@pytest.fixture(scope="session")
def docs_jobs(request, tmp_path_factory) -> DocsJobs:
    """Every selected page run (and the site build, if selected), started in parallel."""
    site, pages = _selected(request.session)
    jobs = DocsJobs(JOBS)
    _JOBS.append(jobs)
    request.addfinalizer(jobs.close)
    env = _subprocess_env()
    work = []
    if site and importlib.util.find_spec("mkdocs") is not None:
        out = tmp_path_factory.mktemp("site") / "site"
        # Not -q: mkdocs counts the warnings that strict mode turns into a failure only when
        # they are logged, and -q drops them first (the build then passes with warnings).
        argv = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)]
        # The build's cost is about that of a page that starts three programs.
        work.append((30, SITE, argv, tutorials.ROOT, 600))
        jobs.site_dir = out
    for page in pages:
        cwd = tmp_path_factory.mktemp(page.replace(".md", ""))
        os.symlink(os.path.join(tutorials.ROOT, "scripts"), cwd / "scripts")
        program = cwd / "run_tutorial.py"
        program.write_text(tutorials.driver(page))
        work.append((_page_cost(page), ("page", page), [sys.executable, str(program)], cwd, 900))
    for _, key, argv, cwd, timeout in sorted(work, key=lambda w: -w[0]):
        jobs.submit(key, argv, str(cwd), env, timeout)
    return jobs


@pytest.fixture(scope="session")
def built_site(docs_jobs):
    """The directory of the site, built once per session in strict mode."""
    if SITE not in docs_jobs.futures:
        pytest.skip("mkdocs not installed")
    done = docs_jobs.result(SITE)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return docs_jobs.site_dir


def pytest_terminal_summary(terminalreporter):
    for jobs in _JOBS:
        finished = {
            key: f.result() for key, f in jobs.futures.items() if f.done() and not f.cancelled()
        }
        if not finished:
            continue
        terminalreporter.section(f"docs jobs (wall time, {JOBS} at a time)")
        for (kind, name), job in sorted(finished.items(), key=lambda kv: -kv[1].wall_s):
            terminalreporter.write_line(f"{job.wall_s:7.1f} s  {kind} {name} (rc {job.returncode})")
