"""rlkit: pure-function reinforcement-learning primitives on JAX.

Each primitive takes one unbatched transition or trajectory (callers vmap) and keeps the names,
argument order, defaults and semantics of the rlax 0.1.9 function of the same name, so rlax code
ports by changing the import. See README.md for the tour.
"""

from rlkit import errors, base, value_learning, multistep, policy_gradients, vtrace, distributional, losses, transforms, distributions, exploration, pop_art, moving_averages, normalize, replay
from rlkit.errors import *  # noqa: F401,F403
from rlkit.base import *  # noqa: F401,F403
from rlkit.value_learning import *  # noqa: F401,F403
from rlkit.multistep import *  # noqa: F401,F403
from rlkit.policy_gradients import *  # noqa: F401,F403
from rlkit.vtrace import *  # noqa: F401,F403
from rlkit.distributional import *  # noqa: F401,F403
from rlkit.losses import *  # noqa: F401,F403
from rlkit.transforms import *  # noqa: F401,F403
from rlkit.distributions import *  # noqa: F401,F403
from rlkit.exploration import *  # noqa: F401,F403
from rlkit.pop_art import *  # noqa: F401,F403
from rlkit.moving_averages import *  # noqa: F401,F403
from rlkit.normalize import *  # noqa: F401,F403
from rlkit.replay import *  # noqa: F401,F403

__all__ = [
    *errors.__all__,
    *base.__all__,
    *value_learning.__all__,
    *multistep.__all__,
    *policy_gradients.__all__,
    *vtrace.__all__,
    *distributional.__all__,
    *losses.__all__,
    *transforms.__all__,
    *distributions.__all__,
    *exploration.__all__,
    *pop_art.__all__,
    *moving_averages.__all__,
    *normalize.__all__,
    *replay.__all__,
]
__version__ = "0.1.0"
