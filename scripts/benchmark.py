"""Speed benchmarks, each side by side with its peer in the same run.

    python scripts/benchmark.py primitives   # rlkit vs rlax: lambda_returns, GAE, vtrace, q_learning, C51
    python scripts/benchmark.py envs         # rlkit CartPole vs gymnax vs Gymnasium's vector env
    python scripts/benchmark.py dqn          # time to solve CartPole: rlkit vs SB3 / sbx / rejax
    python scripts/benchmark.py ppo          # PureJaxRL settings: rlkit vs rejax, 1 and 8 seeds
    python scripts/benchmark.py qlearning    # PQN, DQN (IQN): rlkit vs rejax, 1 and 8 seeds
    python scripts/benchmark.py qrdqn        # QR-DQN: time to a greedy 475 vs sb3-contrib
    python scripts/benchmark.py eval         # vectorised evaluation vs a make_vec loop
    python scripts/benchmark.py host         # DQN on LunarLander: host backend, pipeline, SB3
    python scripts/benchmark.py atari        # PPO on Breakout, 8 envs: rlkit vs CleanRL-style
    python scripts/benchmark.py scaling      # PPO env steps/s over mesh shapes of 1..N devices
    python scripts/benchmark.py sac          # SAC on Pendulum: host and compiled vs sbx and rejax
    python scripts/benchmark.py td3          # TD3 on Pendulum: host and compiled vs sbx and rejax
    python scripts/benchmark.py cnn          # MinAtar training with XLA's convolution vs im2col

Peers come from the [bench] extra (pip install -e ".[bench]"); a missing peer is skipped with a note.
Figures for this repository are recorded in docs/benchmarks.md with the machine that made them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SUITES = {
    "primitives": "scripts.bench_primitives",
    "envs": "scripts.bench_envs",
    "dqn": "scripts.bench_dqn",
    "ppo": "scripts.bench_ppo",
    "eval": "scripts.bench_eval",
    "qlearning": "scripts.bench_qlearning",
    "qrdqn": "scripts.bench_qrdqn",
    "host": "scripts.bench_host",
    "atari": "scripts.bench_atari",
    "scaling": "scripts.bench_scaling",
    "sac": "scripts.bench_continuous",
    "td3": "scripts.bench_continuous",
    "cnn": "scripts.bench_cnn",
}

#: Options a suite's module gets before the user's (one module serves several suites).
SUITE_OPTIONS = {"sac": ["--agent", "sac"], "td3": ["--agent", "td3"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", choices=sorted(SUITES) + ["all"], help="which benchmark to run")
    p.add_argument("options", nargs=argparse.REMAINDER,
                   help="passed to the suite (python scripts/benchmark.py dqn --help lists them)")
    args = p.parse_args(argv)
    names = sorted(SUITES) if args.suite == "all" else [args.suite]
    for name in names:
        print(f"== {name} ==", flush=True)
        module = importlib.import_module(SUITES[name])
        sys.argv = [f"benchmark.py {name}", *SUITE_OPTIONS.get(name, []), *args.options]
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
