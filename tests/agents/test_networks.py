"""agents.networks: the LAPACK-free orthogonal initialiser and the networks built on it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
import pytest

from agents.networks import ActorCritic, QNetwork, orthogonal
from rlkit.errors import RLKitError


@pytest.mark.parametrize("shape", [(4, 64), (64, 64), (64, 2), (256, 256), (3, 5, 7), (1, 1)])
@pytest.mark.parametrize("scale", [1.0, np.sqrt(2), 0.01])
def test_orthogonal_equals_jax_initialiser(shape, scale):
    key = jax.random.key(7)
    want = jax.nn.initializers.orthogonal(scale)(key, shape, jnp.float32)
    got = orthogonal(scale)(key, shape)
    assert got.shape == shape and got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=5e-6 * scale, rtol=0)
    m = np.asarray(got).reshape(-1, shape[-1]) / scale
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=2e-6)


def test_orthogonal_vmaps_without_a_lapack_call():
    init = orthogonal(1.0)
    keys = jax.random.split(jax.random.key(0), 8)
    batched = jax.jit(jax.vmap(lambda k: init(k, (64, 64))))
    out = batched(keys)
    for i in (0, 7):
        np.testing.assert_allclose(np.asarray(out[i]), np.asarray(init(keys[i], (64, 64))), atol=1e-6)
    hlo = batched.lower(keys).as_text()
    assert "custom_call" not in hlo and "lapack" not in hlo.lower()


def test_orthogonal_bad_shape_names_the_argument():
    with pytest.raises(RLKitError, match="shape must have rank >= 2"):
        orthogonal()(jax.random.key(0), (5,))
    assert orthogonal()(jax.random.key(0), (0, 3)).shape == (0, 3)


def test_networks_use_it_and_init_under_vmap():
    keys = jax.random.split(jax.random.key(1), 4)
    obs = jnp.zeros((2, 4))
    params = jax.vmap(lambda k: ActorCritic(2).init(k, obs))(keys)
    kernel = params["params"]["actor_torso"]["Dense_0"]["kernel"]  # [4 seeds, 4, 64]
    # Flax hands each layer a key folded from its module path: check shapes and orthogonality.
    assert kernel.shape == (4, 4, 64)
    for k in kernel:
        np.testing.assert_allclose(np.asarray(k @ k.T), 2.0 * np.eye(4), atol=1e-5)
    q = jax.vmap(lambda k: QNetwork(3, hidden=(32,)).init(k, obs))(keys)
    head = q["params"]["Dense_0"]["kernel"]
    assert head.shape == (4, 32, 3)
    for k in head:
        np.testing.assert_allclose(np.asarray(k.T @ k), np.eye(3), atol=1e-5)


# --------------------------------------------------------------------------------------------------
# Image torsos
# --------------------------------------------------------------------------------------------------

from flax import struct  # noqa: E402

from agents.base import BaseConfig  # noqa: E402
from agents.dqn import DQN  # noqa: E402
from agents.networks import CNN, ConvSpec, conv_spec  # noqa: E402
from agents.ppo import PPO  # noqa: E402
from agents.runtime.loop import make_train  # noqa: E402
from envs.core import Box, Discrete, Environment, EnvParams, EnvState  # noqa: E402


@pytest.mark.parametrize(
    "spec, shape, features",
    [
        (ConvSpec("nature"), (84, 84, 4), 512),
        (ConvSpec("nature", (16,), (3,), (1,), 128), (10, 10, 4), 128),
        (ConvSpec("impala", (16, 32, 32), dense=256), (64, 64, 3), 256),
        (ConvSpec("impala", (16,), dense=32), (10, 10, 7), 32),
    ],
)
def test_cnn_torsos_map_images_to_features(spec, shape, features):
    net = CNN(spec)
    x = jnp.ones((2, 3) + shape, jnp.uint8)
    params = net.init(jax.random.key(0), x)
    out = net.apply(params, x)
    assert out.shape == (2, 3, features) and out.dtype == jnp.float32
    n_conv = sum(1 for k in jax.tree_util.tree_flatten_with_path(params)[0]
                 if "Conv" in jax.tree_util.keystr(k[0]) and "kernel" in jax.tree_util.keystr(k[0]))
    # nature: one convolution per entry; impala: 1 + 2 x 2 per stage.
    assert n_conv == (len(spec.channels) if spec.kind == "nature" else 5 * len(spec.channels))


@pytest.mark.parametrize(
    "image, kernel, stride, padding",
    [
        ((10, 10, 4), 3, 1, "VALID"),  # MinAtar's torso
        ((84, 84, 4), 8, 4, "VALID"),  # Nature-DQN's first layer
        ((10, 10, 7), 3, 1, "SAME"),  # IMPALA's
        ((11, 9, 3), 4, 2, "SAME"),  # uneven padding, a stride that does not divide the image
        ((9, 12, 2), 2, 3, ((1, 0), (2, 1))),  # explicit padding, as nn.Conv may pass it
    ],
)
def test_im2col_conv_equals_xla_convolution_per_kernel_and_vmapped(image, kernel, stride, padding):
    from agents.networks import im2col_conv

    kx, kw = jax.random.split(jax.random.key(3))
    x = jax.random.normal(kx, (5,) + image)
    w = jax.random.normal(kw, (3, kernel, kernel, image[-1], 6))  # one kernel per "seed"
    dn = ("NHWC", "HWIO", "NHWC")

    def ref(w, x):
        return lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=dn)

    def ours(w, x):
        return im2col_conv(x, w, (stride, stride), padding)

    np.testing.assert_allclose(ours(w[0], x), ref(w[0], x), rtol=1e-5, atol=1e-5)
    batched = jax.vmap(ours, in_axes=(0, None))(w, x)
    np.testing.assert_allclose(batched, jax.vmap(ref, in_axes=(0, None))(w, x), rtol=1e-5, atol=1e-5)
    # The kernel's gradient (what training takes) and the image's agree as well.
    probe = jax.random.normal(jax.random.key(4), batched.shape[1:])
    for argnum in (0, 1):
        g_ours = jax.grad(lambda w, x: jnp.sum(ours(w, x) * probe), argnum)(w[1], x)
        g_ref = jax.grad(lambda w, x: jnp.sum(ref(w, x) * probe), argnum)(w[1], x)
        np.testing.assert_allclose(g_ours, g_ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(NotImplementedError, match="dilation"):
        im2col_conv(x, w[0], (1, 1), "VALID", rhs_dilation=(2, 2))


@pytest.mark.parametrize("kind", ["nature", "impala"])
def test_cnn_gives_the_same_features_with_either_convolution(kind):
    import dataclasses

    spec = ConvSpec(kind, (16,), (3,), (1,), 32, layer_norm=kind == "nature")
    x = jax.random.bernoulli(jax.random.key(5), 0.3, (2, 4, 10, 10, 7))
    params = CNN(spec).init(jax.random.key(0), x)
    im2col = dataclasses.replace(spec, conv_impl="im2col")
    # The same parameters: the module tree does not depend on how the convolution is computed.
    assert jax.tree.structure(CNN(im2col).init(jax.random.key(0), x)) == jax.tree.structure(params)
    np.testing.assert_allclose(
        CNN(im2col).apply(params, x), CNN(spec).apply(params, x), rtol=1e-5, atol=1e-5
    )


def test_cnn_impl_auto_takes_im2col_for_the_nature_torso_of_small_images_on_a_cpu():
    config = BaseConfig(cnn_channels=(16,), cnn_kernels=(3,), cnn_strides=(1,))
    small, large = Box(0.0, 1.0, (10, 10, 4)), Box(0, 255, (84, 84, 4), jnp.uint8)
    cpu = jax.default_backend() == "cpu"
    assert conv_spec(config, small).conv_impl == ("im2col" if cpu else "xla")
    assert conv_spec(config.replace(cnn_channels=(32,), cnn_kernels=(8,), cnn_strides=(4,)),
                     large).conv_impl == "xla"
    assert conv_spec(config.replace(cnn="impala"), small).conv_impl == "xla"
    for impl in ("xla", "im2col"):
        assert conv_spec(config.replace(cnn_impl=impl), small).conv_impl == impl
        assert conv_spec(config.replace(cnn_impl=impl), Box(0.0, 1.0, (4,))) is None
    with pytest.raises(RLKitError, match="--cnn-impl: expected one of"):
        conv_spec(config.replace(cnn_impl="fft"), small)


def test_conv_spec_from_config_and_errors():
    config = BaseConfig()
    assert conv_spec(config, Box(0.0, 1.0, (4,))) is None  # vectors: the MLP
    nature = conv_spec(config, Box(0, 255, (84, 84, 4), jnp.uint8))
    assert nature.kind == "nature" and nature.scale == pytest.approx(1 / 255)
    assert conv_spec(config, Box(0.0, 1.0, (84, 84, 4))).scale == 1.0
    with pytest.raises(RLKitError, match="--cnn-kernels"):
        conv_spec(config, Box(0.0, 1.0, (10, 10, 4)))  # an 8x8/4 then 4x4 stack does not fit
    with pytest.raises(RLKitError, match="--cnn"):
        conv_spec(config.replace(cnn="resnet"), Box(0.0, 1.0, (10, 10, 4)))
    with pytest.raises(RLKitError, match="same number"):
        conv_spec(config.replace(cnn_kernels=(3,)), Box(0.0, 1.0, (84, 84, 4)))
    assert conv_spec(config.replace(cnn="impala"), Box(0.0, 1.0, (10, 10, 4))).kind == "impala"


@struct.dataclass
class _PixelState(EnvState):
    side: jax.Array


class _PixelBandit(Environment):
    """One-step episodes: a lit pixel in the left or right half of a 10x10x2 image; the action
    naming that half earns 1. Only a torso that sees the image can do better than 0.5."""

    id = "PixelBandit"

    @property
    def default_params(self):
        return EnvParams(max_episode_steps=1)

    def _obs(self, key, side):
        col = jax.random.randint(key, (), 0, 5) + 5 * side
        row = jax.random.randint(jax.random.fold_in(key, 1), (), 0, 10)
        img = jnp.zeros((10, 10, 2), jnp.bool_).at[row, col, 0].set(True)
        return img.at[:, :, 1].set(True)

    def reset_env(self, key, params):
        side = jax.random.bernoulli(key).astype(jnp.int32)
        return self._obs(key, side), _PixelState(time=jnp.asarray(0, jnp.int32), side=side)

    def step_env(self, key, state, action, params):
        reward = (action == state.side).astype(jnp.float32)
        state = state.replace(time=state.time + 1)
        return self._obs(key, state.side), state, reward, jnp.asarray(True), {}

    def observation_space(self, params=None):
        return Box(0, 1, (10, 10, 2), jnp.bool_)

    def action_space(self, params=None):
        return Discrete(2)


SMALL_CNN = {"cnn_channels": (8,), "cnn_kernels": (3,), "cnn_strides": (1,), "cnn_dense": 32}


@pytest.mark.parametrize("agent_cls, overrides", [
    (PPO, {"total_timesteps": 8192, "num_envs": 16, "rollout_length": 8, "learning_rate": 3e-3,
           "num_minibatches": 2}),
    (DQN, {"total_timesteps": 4096, "num_envs": 8, "rollout_length": 8, "learning_starts": 256,
           "gradient_steps": 8, "batch_size": 64, "buffer_size": 4096, "n_step": 1,
           "exploration_fraction": 0.3}),
])
def test_agents_learn_from_pixels_with_the_cnn_torso(agent_cls, overrides):
    env = _PixelBandit()
    agent = agent_cls(env.observation_space(), env.action_space())
    config = agent_cls.Config(**SMALL_CNN, **overrides)
    rs, _ = jax.jit(make_train(agent, env, config))(config, jax.random.key(0))
    pparams = agent.policy_params(rs.agent_state)
    keys = jax.random.split(jax.random.key(1), 256)
    obs, states = jax.vmap(lambda k: env.reset(k, env.default_params))(keys)
    actions = agent.policy(config, pparams, obs, jax.random.key(2))
    accuracy = float(jnp.mean(actions == states.side))
    assert accuracy >= 0.9, accuracy
    # The network really is the CNN torso.
    assert any("Conv" in jax.tree_util.keystr(p) for p, _ in
               jax.tree_util.tree_flatten_with_path(pparams)[0])
