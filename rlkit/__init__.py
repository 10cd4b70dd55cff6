"""rlkit: pure-function reinforcement-learning primitives on JAX.

Each primitive takes one unbatched transition or trajectory (callers vmap) and keeps the names,
argument order, defaults and semantics of the rlax 0.1.9 function of the same name, so rlax code
ports by changing the import. Every public name of the submodules below is re-exported here flat.
The porting table (rlax name -> rlkit name, with caveats) is docs/porting.md in the repository.
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

# rlax names that rlkit spells differently or keeps elsewhere: asking for one names the
# replacement instead of a bare AttributeError.
_RLAX_SPELLINGS = {
    "clipping": "rlkit.losses (huber_loss and clip_gradient live there, same signatures)",
    "nonlinear_bellman": "rlkit.transforms (TxPair, the *_PAIR constants and transformed_* live there)",
    "transform_values": (
        "the transformed_* functions of rlkit.transforms, which apply tx_pair.apply_inv to the "
        "values and tx_pair.apply to the targets themselves"
    ),
    "get_top_k_weights": "rlkit.mpo_ops.get_top_k_weights (module-level in rlax too)",
    "kl_constraint_loss": "rlkit.mpo_ops.kl_constraint_loss",
    "kl_alpha_loss": "rlkit.mpo_ops.kl_alpha_loss",
    "_src": "rlkit itself: rlax._src.<module> is rlkit.<module> (see docs/porting.md)",
}


def __getattr__(name: str):
    """Names the rlkit replacement of an rlax name that rlkit spells differently."""
    if name in _RLAX_SPELLINGS:
        raise AttributeError(
            f"module 'rlkit' has no attribute {name!r}; rlax's {name!r} is {_RLAX_SPELLINGS[name]}"
        )
    raise AttributeError(f"module 'rlkit' has no attribute {name!r}")
