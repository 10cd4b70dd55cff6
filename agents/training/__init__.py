"""The training job: ``job`` (one loop), ``backends`` (compiled and host), ``best`` (evaluations
during training), ``report`` (progress, logs, summary)."""

from agents.runs.spec import RunArgs  # noqa: F401
from agents.training.job import train  # noqa: F401

__all__ = ["RunArgs", "train"]
