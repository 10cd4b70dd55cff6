"""MinAtar's five games as pure, jittable environments, equal step for step to ``minatar`` 1.0.15.

========================  ======================  ===========  ========
id                        class                   actions      channels
========================  ======================  ===========  ========
MinAtar/Asterix-v1        ``Asterix``             n l u r d    4
MinAtar/Breakout-v1       ``Breakout``            n l r        4
MinAtar/Freeway-v1        ``Freeway``             n u d        7
MinAtar/Seaquest-v1       ``Seaquest``            n l u r d f  10
MinAtar/SpaceInvaders-v1  ``SpaceInvaders``       n l r f      6
========================  ======================  ===========  ========

The ``-v0`` ids take all six actions, as the reference's Gymnasium ids do. Observations are
bool ``[10, 10, C]`` with the reference's channels in its order. Params (``MinAtarParams``):
``sticky_action_prob`` (0.1), ``difficulty_ramping`` (True) and ``max_episode_steps`` (no limit,
as in the reference). Gymnasium ids: ``rlkit/MinAtar.<Game>-v1`` (see ``envs.gymnasium``).
"""

from envs.core import register
from envs.render import PureRenderer, register_renderer
from envs.minatar.asterix import Asterix, AsterixState
from envs.minatar.base import NO_TIME_LIMIT, MinAtarEnv, MinAtarParams, MinAtarState
from envs.minatar.breakout import Breakout, BreakoutState
from envs.minatar.freeway import Freeway, FreewayState
from envs.minatar.seaquest import Seaquest, SeaquestState
from envs.minatar.space_invaders import SpaceInvaders, SpaceInvadersState

__all__ = [
    "GAMES",
    "NO_TIME_LIMIT",
    "Asterix",
    "AsterixState",
    "Breakout",
    "BreakoutState",
    "Freeway",
    "FreewayState",
    "MinAtarEnv",
    "MinAtarParams",
    "MinAtarState",
    "Seaquest",
    "SeaquestState",
    "SpaceInvaders",
    "SpaceInvadersState",
]

#: The game classes by the reference's game name.
GAMES = {cls.game: cls for cls in (Asterix, Breakout, Freeway, Seaquest, SpaceInvaders)}


def _factory(cls: type, minimal: bool):
    return lambda: cls(minimal_action_set=minimal)


for _cls in GAMES.values():
    for _minimal in (False, True):
        _env = _cls(minimal_action_set=_minimal)
        register(_env.id, _factory(_cls, _minimal))
        register_renderer(_env.id, PureRenderer(_env))
del _cls, _minimal, _env
