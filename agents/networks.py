"""Flax networks shared by the agents: torsos chosen from the observation space, Q-networks
(optionally dueling, optionally distributional) and actor-critics.

A torso maps observations to features. Vector observations ``[D]`` go through an ``MLP``; image
observations ``[H, W, C]`` through a ``CNN`` described by a ``ConvSpec``: the Nature-DQN stack
(Mnih et al., 2015: convolutions, then one dense layer) or the IMPALA residual stack (Espeholt
et al., 2018: per stage a convolution, a max-pool and two residual blocks). ``conv_spec`` builds
the spec from an agent config (fields ``cnn``, ``cnn_channels``, ``cnn_kernels``, ``cnn_strides``,
``cnn_dense`` and ``cnn_impl`` of ``agents.base.BaseConfig``) and the observation space; ``uint8``
images are scaled to [0, 1].

Convolutions run either as XLA's convolution or as ``im2col_conv`` (the image's shifted views
stacked along the channels, then one matrix product). On XLA's CPU backend a convolution whose
kernel is vmapped (one kernel per seed, as ``--num-seeds`` runs) becomes a grouped convolution
that runs several times slower than the seeds one after another, while the matrix product stays
fast; ``cnn_impl="auto"`` therefore takes ``im2col`` for the nature torso on a CPU for small images
(MinAtar's 10x10) and XLA's convolution elsewhere: for Atari's 84x84 frames and for the IMPALA
torso ``im2col`` was not faster (figures in docs/benchmarks.md).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import rlkit
from rlkit.errors import RLKitError

__all__ = [
    "MLP",
    "CNN",
    "ConvSpec",
    "conv_spec",
    "im2col_conv",
    "QNetwork",
    "DistributionalQNetwork",
    "ActorCritic",
    "NoisyDense",
    "ImplicitQuantileNetwork",
    "activation_fn",
    "orthogonal",
    "DenseStack",
    "ContinuousQNetwork",
    "DeterministicActor",
    "GaussianActor",
]

CNN_KINDS = ("nature", "impala")
CONV_IMPLS = ("auto", "xla", "im2col")
#: ``cnn_impl="auto"`` takes ``im2col`` (nature torso, on a CPU) for images of at most this many
#: pixels.
IM2COL_MAX_PIXELS = 32 * 32

_ACTIVATIONS: dict[str, Callable] = {
    "relu": nn.relu,
    "tanh": nn.tanh,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
}


def activation_fn(name: str) -> Callable:
    """Look up an activation by name (relu, tanh, elu, gelu, silu)."""
    if name not in _ACTIVATIONS:
        raise RLKitError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {name!r}")
    return _ACTIVATIONS[name]


def _orthonormal_columns(a: jax.Array) -> jax.Array:
    """Q of the thin QR decomposition of a tall matrix ``a`` [m, n] (m >= n), with R's diagonal
    positive: classical Gram-Schmidt with one re-orthogonalisation pass ("twice is enough"),
    orthonormal to float32 rounding for the well-conditioned Gaussian matrices drawn here."""

    def column(j, q):
        v = lax.dynamic_index_in_dim(a, j, axis=1, keepdims=False)
        for _ in range(2):  # columns of q not yet filled are zero, so they project out nothing
            v = v - q @ (q.T @ v)
        v = v / jnp.linalg.norm(v)
        return lax.dynamic_update_index_in_dim(q, v, j, axis=1)

    return lax.fori_loop(0, a.shape[1], column, jnp.zeros_like(a))


def orthogonal(scale: float = 1.0) -> Callable:
    """An orthogonal kernel initialiser, the same matrices as ``jax.nn.initializers.orthogonal``.

    It draws the same Gaussian matrix from the key and orthonormalises it with array operations
    instead of LAPACK's QR, so vmapped inits contain no batched LAPACK call (why that matters on
    a CPU is in docs/design.md). The values match JAX's initialiser to float32 rounding and follow
    the same (Haar) distribution.

    Args:
      scale: multiplier of the orthogonal matrix (the gain).

    Returns:
      ``init(key, shape, dtype=float32)`` for a kernel of rank >= 2 whose last axis is the output.
    """

    def init(key, shape, dtype=jnp.float32):
        shape = tuple(int(d) for d in shape)
        if len(shape) < 2:
            raise RLKitError(f"orthogonal: shape must have rank >= 2, got {shape}")
        if any(d == 0 for d in shape):
            return jnp.zeros(shape, dtype)
        n_cols = shape[-1]
        n_rows = math.prod(shape) // n_cols
        tall = (max(n_rows, n_cols), min(n_rows, n_cols))
        q = _orthonormal_columns(jax.random.normal(key, tall, jnp.float32))
        if n_rows < n_cols:
            q = q.T
        return (scale * q).reshape(shape).astype(dtype)

    return init


class MLP(nn.Module):
    """Dense layers with an activation after each, orthogonal init (gain sqrt(2)).

    With ``layer_norm`` each dense layer's output is layer-normalised (Ba et al., 2016) before the
    activation, as PQN does (Gallici et al., 2024).
    """

    hidden: Sequence[int]
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x):
        act = activation_fn(self.activation)
        for width in self.hidden:
            x = nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)))(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        return x


@dataclasses.dataclass(frozen=True)
class ConvSpec:
    """A convolutional torso for image observations ``[H, W, C]``.

    Attributes:
      kind: ``"nature"`` (convolutions with ``channels``, ``kernels``, ``strides``, VALID padding,
        ReLU) or ``"impala"`` (one stage per entry of ``channels``: 3x3 convolution, 3x3 max-pool
        with stride 2, two residual blocks of two 3x3 convolutions; ``kernels``/``strides`` unused).
      channels: output channels per convolution (nature) or per stage (impala).
      kernels: kernel sizes (nature).
      strides: strides (nature).
      dense: width of the dense ReLU layer after the flattened convolutions.
      scale: factor applied to the observations first (``1/255`` for ``uint8`` images).
      layer_norm: layer-normalise every convolution's and the dense layer's output before its
        ReLU (PQN's torso; ``dataclasses.replace(spec, layer_norm=True)``).
      conv_impl: ``"xla"`` (``lax.conv_general_dilated``) or ``"im2col"`` (``im2col_conv``): the
        same convolution computed two ways (equal up to float rounding, with the same
        parameters). ``conv_spec`` resolves the config's ``"auto"`` to one of them.
    """

    kind: str = "nature"
    channels: tuple[int, ...] = (32, 64, 64)
    kernels: tuple[int, ...] = (8, 4, 3)
    strides: tuple[int, ...] = (4, 2, 1)
    dense: int = 512
    scale: float = 1.0
    layer_norm: bool = False
    conv_impl: str = "xla"


def im2col_conv(
    lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
    dimension_numbers=None, feature_group_count=1, precision=None,
):
    """``lax.conv_general_dilated`` of NHWC images with an HWIO kernel as one matrix product.

    The ``kh * kw`` shifted (strided) views of the padded image are concatenated along the
    channels, ``patches[b, y, x, (i * kw + j) * C + c] = image[b, s_h y + i, s_w x + j, c]``, and
    multiplied by the kernel reshaped to ``[kh * kw * C, F]``: the same sum as the convolution,
    in another order. Takes flax ``nn.Conv``'s ``conv_general_dilated`` arguments; only what the
    torsos use is supported (no dilation, one feature group).
    """
    if any(d != 1 for d in (lhs_dilation or ()) + (rhs_dilation or ())) or feature_group_count != 1:
        raise NotImplementedError("im2col_conv: no dilation and one feature group only")
    kh, kw, c, f = rhs.shape
    sh, sw = window_strides
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), window_strides, padding)
    (pt, pb), (pl, pr) = padding
    if pt or pb or pl or pr:
        lhs = jnp.pad(lhs, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh, ow = (lhs.shape[1] - kh) // sh + 1, (lhs.shape[2] - kw) // sw + 1
    patches = jnp.concatenate(
        [
            lhs[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
            for i in range(kh)
            for j in range(kw)
        ],
        axis=-1,
    )
    return jnp.einsum("bhwk,kf->bhwf", patches, rhs.reshape(kh * kw * c, f), precision=precision)


def conv_spec(config: Any, observation_space: Any) -> ConvSpec | None:
    """The ``ConvSpec`` of ``config`` for image observations, None for vector observations.

    Raises RLKitError when the spec does not fit the image (a nature stack whose kernels do not
    fit in the shrinking feature map, or mismatched lengths of channels, kernels and strides).
    """
    shape = tuple(observation_space.shape)
    if len(shape) != 3:
        return None
    if config.cnn not in CNN_KINDS:
        raise RLKitError(f"--cnn: expected one of {CNN_KINDS}, got {config.cnn!r}")
    impl = config.cnn_impl
    if impl not in CONV_IMPLS:
        raise RLKitError(f"--cnn-impl: expected one of {CONV_IMPLS}, got {impl!r}")
    if impl == "auto":
        small = shape[0] * shape[1] <= IM2COL_MAX_PIXELS
        cpu = jax.default_backend() == "cpu"
        impl = "im2col" if small and cpu and config.cnn == "nature" else "xla"
    dtype = np.dtype(getattr(observation_space, "dtype", np.float32))
    scale = 1.0 / 255.0 if dtype == np.uint8 else 1.0
    spec = ConvSpec(
        kind=config.cnn,
        channels=tuple(int(c) for c in config.cnn_channels),
        kernels=tuple(int(k) for k in config.cnn_kernels),
        strides=tuple(int(s) for s in config.cnn_strides),
        dense=int(config.cnn_dense),
        scale=scale,
        conv_impl=impl,
    )
    if not spec.channels or min(spec.channels) < 1 or spec.dense < 1:
        raise RLKitError("--cnn-channels/--cnn-dense: expected positive integers")
    if spec.kind == "nature":
        if not (len(spec.channels) == len(spec.kernels) == len(spec.strides)):
            raise RLKitError(
                "--cnn-channels, --cnn-kernels, --cnn-strides: expected the same number of "
                f"entries, got {len(spec.channels)}, {len(spec.kernels)}, {len(spec.strides)}"
            )
        h, w = shape[:2]
        for k, st in zip(spec.kernels, spec.strides):
            if k < 1 or st < 1 or k > h or k > w:
                raise RLKitError(
                    f"--cnn-kernels: a {k}x{k} kernel (stride {st}) does not fit the {h}x{w} "
                    f"feature map of a {shape} observation; use smaller kernels or --cnn impala"
                )
            h, w = (h - k) // st + 1, (w - k) // st + 1
    return spec


class CNN(nn.Module):
    """The convolutional torso of a ``ConvSpec``: images ``[..., H, W, C]`` -> features ``[..., F]``."""

    spec: ConvSpec

    @nn.compact
    def __call__(self, obs):
        spec = self.spec
        batch_shape = obs.shape[:-3]
        x = obs.reshape((-1,) + obs.shape[-3:]).astype(jnp.float32) * spec.scale
        gain = orthogonal(np.sqrt(2))
        conv_fn = im2col_conv if spec.conv_impl == "im2col" else None

        def Conv(*args, **kwargs):
            return nn.Conv(*args, conv_general_dilated=conv_fn, **kwargs)

        def norm(y):
            return nn.LayerNorm()(y) if spec.layer_norm else y

        if spec.kind == "nature":
            for c, k, st in zip(spec.channels, spec.kernels, spec.strides):
                y = Conv(c, (k, k), (st, st), padding="VALID", kernel_init=gain)(x)
                x = nn.relu(norm(y))
        else:
            for c in spec.channels:
                x = Conv(c, (3, 3), padding="SAME", kernel_init=gain)(x)
                x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
                for _ in range(2):
                    y = Conv(c, (3, 3), padding="SAME", kernel_init=gain)(nn.relu(x))
                    y = Conv(c, (3, 3), padding="SAME", kernel_init=gain)(nn.relu(y))
                    x = x + y
            x = nn.relu(x)
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(norm(nn.Dense(spec.dense, kernel_init=gain)(x)))
        return x.reshape(batch_shape + (spec.dense,))


class QNetwork(nn.Module):
    """Action values ``[..., A]``; the dueling head computes ``V + A - mean(A)`` (Wang et al., 2016).

    The torso is an ``MLP`` of ``hidden`` for vector observations, or the ``CNN`` of ``conv``
    (then ``hidden`` is unused) for images. ``layer_norm`` layer-normalises the torso's hidden
    layers before their activations (the MLP's, or the CNN's with ``ConvSpec.layer_norm``).
    """

    num_actions: int
    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"
    dueling: bool = False
    conv: ConvSpec | None = None
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs):
        if self.conv is None:
            x = MLP(self.hidden, self.activation, self.layer_norm)(obs.astype(jnp.float32))
        else:
            conv = dataclasses.replace(self.conv, layer_norm=True) if self.layer_norm else self.conv
            x = CNN(conv)(obs)
        if not self.dueling:
            return nn.Dense(self.num_actions, kernel_init=orthogonal(1.0))(x)
        value = nn.Dense(1, kernel_init=orthogonal(1.0))(x)
        adv = nn.Dense(self.num_actions, kernel_init=orthogonal(1.0))(x)
        return value + adv - adv.mean(axis=-1, keepdims=True)


class DistributionalQNetwork(nn.Module):
    """Per-action distributions ``[..., A, N]``: ``N`` logits (C51) or quantile values (QR-DQN)
    per action. The dueling head computes ``V + A - mean_a(A)`` per atom (Wang et al., 2016).

    The torso is the one ``QNetwork`` uses: an ``MLP`` of ``hidden`` for vector observations, or
    the ``CNN`` of ``conv`` (then ``hidden`` is unused) for images. With ``noisy`` the head layers
    (the advantage and value layers) are ``NoisyDense`` layers (Rainbow); ``noise_key`` then
    draws their noise (one sample for the whole batch), and None uses their mean weights.
    """

    num_actions: int
    num_atoms: int
    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"
    dueling: bool = False
    conv: ConvSpec | None = None
    noisy: bool = False
    sigma0: float = 0.5

    @nn.compact
    def __call__(self, obs, noise_key=None):
        def head(x, features, index):
            if not self.noisy:
                return nn.Dense(features, kernel_init=orthogonal(1.0))(x)
            key = None if noise_key is None else jax.random.fold_in(noise_key, index)
            return NoisyDense(features, sigma0=self.sigma0)(x, key)

        if self.conv is None:
            x = MLP(self.hidden, self.activation)(obs.astype(jnp.float32))
        else:
            x = CNN(self.conv)(obs)
        shape = x.shape[:-1] + (self.num_actions, self.num_atoms)
        out = head(x, self.num_actions * self.num_atoms, 0)
        out = out.reshape(shape)
        if not self.dueling:
            return out
        value = head(x, self.num_atoms, 1)[..., None, :]
        return value + out - out.mean(axis=-2, keepdims=True)


class ActorCritic(nn.Module):
    """Actor and critic: separate MLPs for vector observations; for images one shared ``CNN``
    torso (``conv``) under both heads.

    Discrete (``continuous=False``): returns ``(logits [..., A], value [...])``.
    Continuous: returns ``((mean [..., A], log_std [..., A]), value [...])`` with a state-independent,
    learned ``log_std``.
    """

    action_dim: int
    continuous: bool = False
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    log_std_init: float = 0.0
    conv: ConvSpec | None = None

    @nn.compact
    def __call__(self, obs):
        if self.conv is None:
            obs = obs.astype(jnp.float32)
            a = MLP(self.hidden, self.activation, name="actor_torso")(obs)
            c = MLP(self.hidden, self.activation, name="critic_torso")(obs)
        else:
            a = c = CNN(self.conv, name="torso")(obs)
        out = nn.Dense(self.action_dim, kernel_init=orthogonal(0.01), name="actor_head")(a)
        value = nn.Dense(1, kernel_init=orthogonal(1.0), name="critic_head")(c)[..., 0]
        if not self.continuous:
            return out, value
        log_std = self.param(
            "log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,)
        )
        return (out, jnp.broadcast_to(log_std, out.shape)), value


class NoisyDense(nn.Module):
    """A dense layer with factorised Gaussian noise on its weights (noisy nets).

    "Noisy Networks for Exploration", Fortunato et al. (2018), https://arxiv.org/abs/1706.10295,
    section 3.2. With ``p`` inputs, ``q`` outputs, ``f(e) = sgn(e) sqrt(|e|)`` and
    ``eps_in ~ N(0, I_p)``, ``eps_out ~ N(0, I_q)`` drawn from ``noise_key``:

        y = x (mu_w + sigma_w * f(eps_in) f(eps_out)^T) + mu_b + sigma_b * f(eps_out)

    ``mu`` starts ``U(-1/sqrt(p), 1/sqrt(p))`` and ``sigma`` at ``sigma0 / sqrt(p)``. The noise
    key is an explicit argument (no hidden state); None gives the mean layer ``x mu_w + mu_b``.
    """

    features: int
    sigma0: float = 0.5

    @nn.compact
    def __call__(self, x, noise_key=None):
        p = x.shape[-1]
        bound = 1.0 / np.sqrt(p)
        mu_init = nn.initializers.uniform(scale=2 * bound)

        def centred(key, shape, dtype=jnp.float32):
            return mu_init(key, shape, dtype) - bound

        sigma_init = nn.initializers.constant(self.sigma0 / np.sqrt(p))
        mu_w = self.param("kernel_mu", centred, (p, self.features))
        sigma_w = self.param("kernel_sigma", sigma_init, (p, self.features))
        mu_b = self.param("bias_mu", centred, (self.features,))
        sigma_b = self.param("bias_sigma", sigma_init, (self.features,))
        x = x.astype(jnp.float32)
        lead = (1,) * (x.ndim - 1)  # explicit broadcasting over the batch axes
        y = x @ mu_w + mu_b.reshape(lead + (-1,))
        if noise_key is None:
            return y
        k_in, k_out = jax.random.split(noise_key)

        def f(e):
            return jnp.sign(e) * jnp.sqrt(jnp.abs(e))

        eps_in = f(jax.random.normal(k_in, (p,)))
        eps_out = f(jax.random.normal(k_out, (self.features,)))
        # x (sigma_w * eps_in eps_out^T) = ((x * eps_in) sigma_w) * eps_out, without forming it.
        noise = (x * eps_in.reshape(lead + (-1,))) @ sigma_w + sigma_b.reshape(lead + (-1,))
        return y + noise * eps_out.reshape(lead + (-1,))


class ImplicitQuantileNetwork(nn.Module):
    """Quantile values ``[..., K, A]`` at sampled fractions ``tau [..., K]`` (IQN).

    "Implicit Quantile Networks for Distributional Reinforcement Learning", Dabney et al. (2018),
    https://arxiv.org/abs/1806.06923: ``Z_tau(x, a) = f(psi(x) * phi(tau))_a`` with the torso
    ``psi`` (an ``MLP`` of ``hidden``, or the ``CNN`` of ``conv`` for images), the fraction
    embedding ``phi(tau) = ReLU(Dense(quantile_cosine_embedding(tau, num_cosines)))`` of the
    torso's width, an elementwise product, and ``f`` one dense layer of that width (with the
    activation) and the output layer; the dueling head computes ``V + A - mean_a(A)`` per
    fraction.
    """

    num_actions: int
    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"
    dueling: bool = False
    conv: ConvSpec | None = None
    num_cosines: int = 64

    @nn.compact
    def __call__(self, obs, tau):
        if self.conv is None:
            x = MLP(self.hidden, self.activation)(obs.astype(jnp.float32))
        else:
            x = CNN(self.conv)(obs)
        width = x.shape[-1]
        basis = rlkit.quantile_cosine_embedding(tau.astype(jnp.float32), self.num_cosines)
        phi = nn.relu(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)))(basis))
        h = x[..., None, :] * phi  # [..., K, width]
        act = activation_fn(self.activation)
        h = act(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)))(h))
        out = nn.Dense(self.num_actions, kernel_init=orthogonal(1.0))(h)
        if not self.dueling:
            return out
        value = nn.Dense(1, kernel_init=orthogonal(1.0))(h)
        return value + out - out.mean(axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------------------
# Continuous control (SAC, TD3, DDPG): state-action critics and squashed actors
# --------------------------------------------------------------------------------------------------


class DenseStack(nn.Module):
    """Dense layers with an activation after each and, with ``layer_norm``, a LayerNorm before
    the activation (Ball et al., 2023, https://arxiv.org/abs/2302.02948). Flax's default
    (LeCun-normal) initialisation, as SB3/sbx's continuous-control networks use."""

    hidden: Sequence[int]
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x):
        act = activation_fn(self.activation)
        for width in self.hidden:
            x = nn.Dense(width)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = act(x)
        return x


class ContinuousQNetwork(nn.Module):
    """One state-action value ``Q(s, a)``: ``[..., D], [..., A] -> [...]``.

    Stack several with ``jax.vmap`` over their parameters (``agents.continuous``) rather than
    building one module per critic.
    """

    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([obs.astype(jnp.float32), action.astype(jnp.float32)], axis=-1)
        x = DenseStack(self.hidden, self.activation, self.layer_norm)(x)
        return nn.Dense(1)(x)[..., 0]


class DeterministicActor(nn.Module):
    """A deterministic policy ``mu(s) = tanh(f(s))`` in ``[-1, 1]^A`` (TD3, DDPG)."""

    action_dim: int
    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, obs):
        x = DenseStack(self.hidden, self.activation)(obs.astype(jnp.float32))
        return jnp.tanh(nn.Dense(self.action_dim)(x))


class GaussianActor(nn.Module):
    """A state-dependent diagonal Gaussian before the tanh squash (SAC): ``(mean [..., A],
    log_std [..., A])``, with ``log_std`` clipped to ``[log_std_min, log_std_max]``."""

    action_dim: int
    hidden: Sequence[int] = (256, 256)
    activation: str = "relu"
    log_std_min: float = -20.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, obs):
        x = DenseStack(self.hidden, self.activation)(obs.astype(jnp.float32))
        mean = nn.Dense(self.action_dim)(x)
        log_std = nn.Dense(self.action_dim)(x)
        return mean, jnp.clip(log_std, self.log_std_min, self.log_std_max)
