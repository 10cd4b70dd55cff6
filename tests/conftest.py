"""Test configuration shared by the whole suite."""

import os

# Guard against the 2-core CPU stall of long compiled programs (see docs/design.md).
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
