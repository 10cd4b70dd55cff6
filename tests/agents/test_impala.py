"""Tests of agents.impala: the loss against rlkit.vtrace and a hand recursion, truncations, runs."""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import agents
import envs
import rlkit
from agents.base import Transition
from agents.impala import IMPALA, ImpalaBatch, ImpalaConfig
from agents.runtime.loop import make_train
from rlkit.errors import RLKitError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from scripts import train as train_script

T, N = 4, 2
CONFIG = ImpalaConfig(num_envs=N, rollout_length=T, gamma=0.9, gae_lambda=0.8, ent_coef=0.0)


def _agent(env_id: str = "CartPole-v1") -> IMPALA:
    env, params = envs.make(env_id)
    return IMPALA(env.observation_space(params), env.action_space(params))


def _batch(terminated, truncated, seed=1):
    k = jax.random.split(jax.random.PRNGKey(seed), 5)
    obs = jax.random.normal(k[0], (T, N, 4))
    # The true next observation: the next step's, but a final one at episode ends and at T - 1.
    final = jax.random.normal(k[1], (T, N, 4))
    ends = np.logical_or(terminated, truncated)
    ends[-1] = True
    next_obs = jnp.where(ends[..., None], final, jnp.concatenate([obs[1:], final[-1:]]))
    return ImpalaBatch(
        obs=obs,
        next_obs=next_obs,
        action=jax.random.randint(k[2], (T, N), 0, 2),
        behaviour_log_prob=jnp.log(jax.random.uniform(k[3], (T, N), minval=0.2, maxval=0.8)),
        reward=jax.random.normal(k[4], (T, N)),
        terminated=jnp.asarray(terminated, bool),
        truncated=jnp.asarray(truncated, bool),
    )


def _net_outputs_traced(agent, config, params, batch):
    net = agent.network(config)
    head, v = net.apply(params, batch.obs.reshape(T * N, 4))
    _, nv = net.apply(params, batch.next_obs.reshape(T * N, 4))
    logp = jax.vmap(rlkit.softmax_log_prob)(head, batch.action.reshape(-1))
    return v.reshape(T, N), nv.reshape(T, N), logp.reshape(T, N)


def _net_outputs(agent, config, params, batch):
    return tuple(np.asarray(x) for x in _net_outputs_traced(agent, config, params, batch))


def _hand_targets(config, batch, v, nv, logp):
    """V-trace by its recursion, written out per env in numpy, cutting traces at episode ends."""
    rho = np.exp(logp - np.asarray(batch.behaviour_log_prob))
    r = np.asarray(batch.reward)
    term, trunc = np.asarray(batch.terminated), np.asarray(batch.truncated)
    vs = np.zeros((T, N))
    adv = np.zeros((T, N))
    for n in range(N):
        acc = 0.0  # v_{t+1} - V(x_{t+1})
        for t in reversed(range(T)):
            disc = config.gamma * (1.0 - term[t, n])
            cut = term[t, n] or trunc[t, n] or t == T - 1
            carry = 0.0 if cut else acc
            delta = min(1.0, rho[t, n]) * (r[t, n] + disc * nv[t, n] - v[t, n])
            acc = delta + disc * config.gae_lambda * min(1.0, rho[t, n]) * carry
            vs[t, n] = v[t, n] + acc
            lam = config.gae_lambda
            nxt = nv[t, n] if cut else lam * vs[t + 1, n] + (1.0 - lam) * nv[t, n]
            adv[t, n] = min(1.0, rho[t, n]) * (r[t, n] + disc * nxt - v[t, n])
    return vs, adv, rho


def test_loss_matches_rlkit_vtrace_and_hand_recursion():
    """No episode end: the loss's targets are rlkit.vtrace's, its advantages the hand ones, and
    the loss value is -mean(A log pi) + vf_coef mean(0.5 (vs - V)^2)."""
    agent = _agent()
    params = agent.init(CONFIG, jax.random.PRNGKey(0)).params
    zeros = np.zeros((T, N), bool)
    batch = _batch(zeros, zeros)
    v, nv, logp = _net_outputs(agent, CONFIG, params, batch)
    rho = np.exp(logp - np.asarray(batch.behaviour_log_prob))
    assert np.ptp(rho) > 0.1  # genuinely off-policy
    errors = jax.vmap(rlkit.vtrace, in_axes=(1, 1, 1, 1, 1, None), out_axes=1)(
        v, nv, batch.reward, jnp.full((T, N), CONFIG.gamma), rho, CONFIG.gae_lambda
    )
    vs, adv, _ = _hand_targets(CONFIG, batch, v, nv, logp)
    np.testing.assert_allclose(vs, v + np.asarray(errors), rtol=1e-5, atol=1e-5)

    targets, advantage, _ = agent.vtrace_targets(CONFIG, batch, v, nv, logp)
    np.testing.assert_allclose(targets, vs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(advantage, adv, rtol=1e-5, atol=1e-5)

    loss, metrics = jax.jit(lambda p: agent.loss(CONFIG, p, batch))(params)
    expected_v = np.mean(0.5 * (vs - v) ** 2)
    # The policy term's value is -mean(A * ratio to a stopped copy) = -mean(A); its gradient is
    # that of -mean(A log pi), checked below.
    np.testing.assert_allclose(metrics["pg_loss"], -np.mean(adv), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(metrics["value_loss"], expected_v, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(loss, -np.mean(adv) + CONFIG.vf_coef * expected_v, rtol=1e-4)

    def hand_loss(p):
        vp, _, lp = (jnp.asarray(x) for x in _net_outputs_traced(agent, CONFIG, p, batch))
        return -jnp.mean(adv * lp) + CONFIG.vf_coef * jnp.mean(0.5 * (vs - vp) ** 2)

    ours = jax.jit(jax.grad(lambda p: agent.loss(CONFIG, p, batch)[0]))(params)
    reference = jax.jit(jax.grad(hand_loss))(params)
    for x, y in zip(jax.tree.leaves(ours), jax.tree.leaves(reference)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)


def test_termination_and_truncation_cut_the_traces():
    """A terminated step does not bootstrap, a truncated one bootstraps on V(final_obs); neither
    takes anything from the next episode (changing its rewards leaves them unchanged)."""
    agent = _agent()
    params = agent.init(CONFIG, jax.random.PRNGKey(0)).params
    term = np.zeros((T, N), bool)
    trunc = np.zeros((T, N), bool)
    term[1, 0] = True
    trunc[1, 1] = True
    batch = _batch(term, trunc)
    v, nv, logp = _net_outputs(agent, CONFIG, params, batch)
    vs, adv, rho = _hand_targets(CONFIG, batch, v, nv, logp)
    targets, advantage, _ = agent.vtrace_targets(CONFIG, batch, v, nv, logp)
    np.testing.assert_allclose(targets, vs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(advantage, adv, rtol=1e-5, atol=1e-5)
    r = np.asarray(batch.reward)
    c = np.minimum(1.0, rho)
    # Terminated: the one-step target r - V, no bootstrap.
    np.testing.assert_allclose(advantage[1, 0], c[1, 0] * (r[1, 0] - v[1, 0]), rtol=1e-5)
    # Truncated: bootstrap on V(final_obs).
    expected = c[1, 1] * (r[1, 1] + CONFIG.gamma * nv[1, 1] - v[1, 1])
    np.testing.assert_allclose(advantage[1, 1], expected, rtol=1e-5)
    later = batch._replace(reward=batch.reward.at[2:].add(100.0))
    targets2, advantage2, _ = agent.vtrace_targets(CONFIG, later, v, nv, logp)
    np.testing.assert_allclose(targets2[:2], targets[:2], rtol=1e-6)
    np.testing.assert_allclose(advantage2[:2], advantage[:2], rtol=1e-6)


def _probe_values() -> tuple[float, float]:
    """One-step episodes with reward 1 from a constant observation, ended by a termination or a
    truncation: V = 1, or V = 1 / (1 - gamma) = 2 with gamma = 0.5. Returns both (one compile)."""
    agent = _agent()
    config = CONFIG.replace(
        gamma=0.5,
        learning_rate=3e-2,
        optimizer="adam",
        anneal_lr=False,
        vf_coef=1.0,
        max_grad_norm=10.0,
        adam_eps=1e-8,
    )
    state = agent.init(config, jax.random.PRNGKey(0))
    obs = jnp.ones((T, N, 4))
    flags = jnp.ones((T, N), bool)

    def update(state, key, truncated):
        # On-policy data: actions and behaviour log-probs from the current policy.
        action, extras = agent.act(config, state, obs.reshape(T * N, 4), key)
        rollout = Transition(
            obs=obs,
            action=action.reshape(T, N),
            reward=jnp.ones((T, N)),
            terminated=jnp.logical_and(flags, jnp.logical_not(truncated)),
            truncated=jnp.logical_and(flags, truncated),
            next_obs=obs,
            extras={"log_prob": extras["log_prob"].reshape(T, N)},
        )
        return agent.update(config, state, rollout, key)[0]

    update = jax.jit(update)
    keys = jax.random.split(jax.random.PRNGKey(1), 300)
    values = []
    for truncated in (False, True):
        s = state
        for key in keys:
            s = update(s, key, jnp.asarray(truncated))
        values.append(float(agent.network(config).apply(s.params, obs[0])[1][0]))
    return tuple(values)


def test_truncation_probe_bootstraps_and_termination_does_not():
    terminated, truncated = _probe_values()
    assert abs(terminated - 1.0) < 0.05
    assert abs(truncated - 2.0) < 0.1


def test_compiled_tiny_run_is_on_policy():
    """On the compiled loop the behaviour policy is the learner's: every ratio is 1."""
    config = ImpalaConfig(total_timesteps=640, num_envs=4, rollout_length=16)
    train = jax.jit(make_train("impala", "CartPole-v1", config))
    _, metrics = train(config, jax.random.PRNGKey(0))
    assert metrics["loss"].shape == (10,)
    np.testing.assert_allclose(metrics["rho_mean"], 1.0, rtol=1e-5)
    assert np.all(np.isfinite(metrics["loss"])) and np.all(metrics["grad_norm"] > 0)


def test_host_tiny_run_and_load_policy(tmp_path):
    out = str(tmp_path / "impala-host")
    argv = ["--agent", "impala", "--env", "CartPole-v1", "--backend", "gymnasium", "--quiet"]
    argv += ["--total-timesteps", "400", "--num-envs", "2", "--rollout-length", "10"]
    argv += ["--eval-every", "0", "--eval-episodes", "2"]
    code = train_script.main([*argv, "--out", out])
    assert code == 0
    policy, env_id = agents.load_policy(out)
    assert env_id == "CartPole-v1"
    action = policy(np.zeros((3, 4), np.float32))
    assert action.shape == (3,) and set(np.asarray(action).tolist()) <= {0, 1}


def test_epochs_and_minibatches_step_on_env_groups_with_fresh_vtrace():
    """num_epochs x num_minibatches: each gradient step is IMPALA's one-step update on the whole
    unroll of a group of envs (shuffled per pass), V-trace recomputed with the current parameters,
    so after the first step the ratios leave 1 (on-policy data)."""
    n_envs = 4
    agent = _agent()
    config = CONFIG.replace(num_envs=n_envs, num_epochs=2, num_minibatches=2, anneal_lr=False)
    state = agent.init(config, jax.random.PRNGKey(0))
    k = jax.random.split(jax.random.PRNGKey(3), 4)
    obs = jax.random.normal(k[0], (T, n_envs, 4))
    action, extras = agent.act(config, state, obs.reshape(T * n_envs, 4), k[1])
    term = jnp.zeros((T, n_envs), bool).at[1, 0].set(True)
    trunc = jnp.zeros((T, n_envs), bool).at[2, 3].set(True)
    rollout = Transition(
        obs=obs,
        action=action.reshape(T, n_envs),
        reward=jax.random.normal(k[2], (T, n_envs)),
        terminated=term,
        truncated=trunc,
        next_obs=jax.random.normal(k[3], (T, n_envs, 4)),
        extras={"log_prob": extras["log_prob"].reshape(T, n_envs)},
    )
    key = jax.random.PRNGKey(7)
    new_state, metrics = jax.jit(agent.update, static_argnums=0)(config, state, rollout, key)

    # By hand: the same permutations of the envs (one split of the key per pass), then one
    # one-step IMPALA update (the paper's, num_epochs = num_minibatches = 1) per group of two.
    one_step = config.replace(num_envs=2, num_epochs=1, num_minibatches=1)
    perms = [jax.random.permutation(kk, n_envs) for kk in jax.random.split(key, 2)]
    params, opt_state, rhos = state.params, state.opt_state, []
    one_update = jax.jit(agent.update, static_argnums=0)
    for perm in perms:
        for group in np.asarray(perm).reshape(2, 2):
            sub = jax.tree.map(lambda x, g=group: x[:, g], rollout)
            sub_state = state._replace(params=params, opt_state=opt_state)
            sub_state, sub_metrics = one_update(one_step, sub_state, sub, key)
            params, opt_state = sub_state.params, sub_state.opt_state
            rhos.append(float(sub_metrics["rho_mean"]))
    for got, want in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(params)):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(rhos[0], 1.0, rtol=1e-6)  # the first step is on-policy
    assert max(abs(r - 1.0) for r in rhos[1:]) > 1e-4  # later ones correct for the drift
    np.testing.assert_allclose(metrics["rho_mean"], np.mean(rhos), rtol=1e-5)
    assert agent.grad_steps_per_update(config) == 4


def test_minibatches_must_divide_the_envs():
    with pytest.raises(RLKitError, match="--num-minibatches.*--num-envs \\(4\\), got 3"):
        _agent().check_config(CONFIG.replace(num_envs=4, num_minibatches=3))
