"""Train an rlkit agent: progress bar, CSV and TensorBoard logs, checkpoints, final evaluation.

    python scripts/train.py --agent dqn                       # DQN on CartPole-v1, tuned defaults
    python scripts/train.py --agent ppo --env Acrobot-v1 --num-seeds 8
    python scripts/train.py --agent ppo --sweep learning_rate=1e-3,3e-4 ent_coef=0,0.01
    python scripts/train.py --agent dqn --env LunarLander-v3  # any Gymnasium id, host env loop
    python scripts/train.py --resume runs/dqn-CartPole-v1-20261127-010203
    python scripts/train.py --agent dqn --help                # every flag, with its default

The agent's hyperparameter flags are generated from its config dataclass, with the defaults tuned for
the chosen --env. Bad input prints one line and exits with status 2 (--debug adds the traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tyro

import agents
from agents.base import config_from_dict
from agents.runs.files import read_run_config
from agents.runs.spec import RunArgs, args_from_run_config
from agents.training import distributed, train
from rlkit.errors import RLKitError
from scripts import cli


def _one_line(box: str) -> str:
    """The title and first message line of tyro's boxed parse error, plus the --help hint."""
    frame = "│|╭╮╰╯+ "
    lines = [ln.strip().strip(frame) for ln in box.splitlines()]
    lines = [ln for ln in lines if ln and not set(ln) <= set("-─ ")]
    title = lines[0].strip("-─ ") if lines else "bad command line"
    detail = lines[1] if len(lines) > 1 else ""
    if not detail or detail.startswith(title):
        return f"{detail or title} (see --help)"
    return f"{title}: {detail} (see --help)"


def _pre_parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--agent", default=None)
    p.add_argument("--env", default=None)
    p.add_argument("--resume", default=None)
    p.add_argument("--coordinator-address", default=None)
    p.add_argument("--num-processes", default=None)
    p.add_argument("--process-id", default=None)
    ns, _ = p.parse_known_args(argv)
    return ns


def _join_processes(argv: list[str]) -> None:
    """Start ``jax.distributed`` first, when the command asks for several processes."""
    pre = _pre_parse(argv)
    counts = {}
    for name in ("num_processes", "process_id"):
        value = getattr(pre, name)
        try:
            counts[name] = None if value is None else int(value)
        except ValueError:
            flag = "--" + name.replace("_", "-")
            raise RLKitError(f"{flag}: expected an integer, got {value!r}") from None
    distributed.initialize(pre.coordinator_address, **counts)


def main(argv: list[str] | None = None) -> int:
    argv, debug = cli.pop_debug(list(sys.argv[1:] if argv is None else argv))
    cli.setup_jax()

    def run() -> int:
        _join_processes(argv)
        with distributed.stop_on_peer_failure():
            return _main(argv)

    return cli.run_cli(run, debug)


def _main(argv: list[str]) -> int:
    pre = _pre_parse(argv)
    run_defaults = RunArgs()
    if pre.resume:
        saved = read_run_config(pre.resume)
        run_defaults = args_from_run_config(saved, resume=pre.resume)
        agent_name = pre.agent or saved.get("agent")
        env_id = pre.env or saved.get("env")
    else:
        agent_name = pre.agent or run_defaults.agent
        env_id = pre.env or run_defaults.env
    agent_cls = agents.get_agent(agent_name)
    if pre.resume and agent_name == saved.get("agent"):
        config_default = config_from_dict(agent_cls.Config, saved.get("config") or {})
    else:
        config_default = agent_cls.default_config(env_id)
    run_defaults = dataclasses.replace(run_defaults, agent=agent_name, env=env_id)

    TrainArgs = dataclasses.make_dataclass(
        "TrainArgs", [("run", RunArgs), ("config", agent_cls.Config)], frozen=True
    )
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            parsed = tyro.cli(
                tyro.conf.OmitArgPrefixes[TrainArgs],
                default=TrainArgs(run_defaults, config_default),
                args=argv,
                description=f"Train {agent_name!r} (defaults tuned for {env_id}). "
                + __doc__.split("\n")[0],
            )
    except SystemExit as e:
        if e.code:
            raise RLKitError(_one_line(captured.getvalue())) from None
        return 0
    sys.stderr.write(captured.getvalue())
    if parsed.run.agent != agent_name or parsed.run.env != env_id:
        raise RLKitError("--agent/--env: give each at most once")
    train(parsed.run, parsed.config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
