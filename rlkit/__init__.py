"""rlkit: pure-function reinforcement-learning primitives on JAX.

Each primitive takes one unbatched transition or trajectory (callers vmap) and keeps the names,
argument order, defaults and semantics of the rlax 0.1.9 function of the same name, so rlax code
ports by changing the import. Every public name of the submodules below is re-exported here flat.
"""

import importlib as _importlib

_MODULES = (
    "errors",
    "base",
    "tree_util",
    "nested_updates",
    "value_learning",
    "multistep",
    "policy_gradients",
    "vtrace",
    "distributional",
    "general_value_functions",
    "losses",
    "transforms",
    "distributions",
    "episodic_memory",
    "exploration",
    "pop_art",
    "moving_averages",
    "running_statistics",
    "replay",
    "interruptions",
    "model_learning",
    "embedding",
    "policy_targets",
    "mpo_ops",
)

_modules = [_importlib.import_module(f"rlkit.{_name}") for _name in _MODULES]

__all__: list = []
_EXPORTED_BY: dict = {}
for _name, _module in zip(_MODULES, _modules):
    for _public in _module.__all__:
        if _public in _EXPORTED_BY:
            raise ImportError(
                f"rlkit.{_name} and rlkit.{_EXPORTED_BY[_public]} both export {_public!r}"
            )
        _EXPORTED_BY[_public] = _name
        globals()[_public] = getattr(_module, _public)
        __all__.append(_public)

__version__ = "0.1.0"
