"""Train an rlkit agent: progress bar, CSV and TensorBoard logs, checkpoints, final evaluation.

    python scripts/train.py --agent dqn                       # DQN on CartPole-v1, tuned defaults
    python scripts/train.py --agent ppo --env Acrobot-v1 --num-seeds 8
    python scripts/train.py --agent ppo --sweep learning_rate=1e-3,3e-4 ent_coef=0,0.01
    python scripts/train.py --agent dqn --env LunarLander-v3  # any Gymnasium id, host env loop
    python scripts/train.py --resume runs/dqn-CartPole-v1-20261127-010203
    python scripts/train.py --agent dqn --help                # every flag, with its default

The agent's hyperparameter flags are generated from its config dataclass, with the defaults tuned for
the chosen --env.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _setup_jax() -> None:
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    from agents.runner import cpu_devices_flag

    # One CPU device per core, so that --num-seeds/--sweep runs are split over the cores.
    os.environ["XLA_FLAGS"] = cpu_devices_flag()
    import jax

    cache = os.environ.get("RLKIT_JAX_CACHE", os.path.expanduser("~/.cache/rlkit/jax"))
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def _pre_parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--agent", default=None)
    p.add_argument("--env", default=None)
    p.add_argument("--resume", default=None)
    ns, _ = p.parse_known_args(argv)
    return ns


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _setup_jax()
    import tyro

    import agents
    from agents.base import config_from_dict
    from agents.checkpoint import read_run_config
    from agents.trainer import RunArgs, train
    from rlkit.errors import RLKitError

    try:
        pre = _pre_parse(argv)
        run_defaults = RunArgs()
        if pre.resume:
            saved = read_run_config(pre.resume)
            saved_run = {k: (tuple(v) if isinstance(v, list) else v) for k, v in saved["run"].items()}
            run_defaults = dataclasses.replace(RunArgs(**saved_run), resume=pre.resume)
            agent_name = pre.agent or saved["agent"]
            env_id = pre.env or saved["env"]
        else:
            agent_name = pre.agent or run_defaults.agent
            env_id = pre.env or run_defaults.env
        agent_cls = agents.get_agent(agent_name)
        if pre.resume and agent_name == saved["agent"]:
            config_default = config_from_dict(agent_cls.Config, saved["config"])
        else:
            config_default = agent_cls.default_config(env_id)
        run_defaults = dataclasses.replace(run_defaults, agent=agent_name, env=env_id)

        TrainArgs = dataclasses.make_dataclass(
            "TrainArgs", [("run", RunArgs), ("config", agent_cls.Config)], frozen=True
        )

        parsed = tyro.cli(
            tyro.conf.OmitArgPrefixes[TrainArgs],
            default=TrainArgs(run_defaults, config_default),
            args=argv,
            description=f"Train {agent_name!r} (defaults tuned for {env_id}). " + __doc__.split("\n")[0],
        )
        if parsed.run.agent != agent_name or parsed.run.env != env_id:
            raise RLKitError("--agent/--env: give each at most once")
        train(parsed.run, parsed.config)
    except RLKitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is kept; continue with --resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
