"""The reduce-on-plateau hook of the trainer: driven by the held-out evaluations, exact on resume."""

import jax
import numpy as np
import orbax.checkpoint as ocp
from helpers import mnist_config

from jaxcnn.metric_writer import read_metrics
from jaxcnn.train import train_and_evaluate


def _config(steps):
    config = mnist_config(num_train_steps=steps)
    config.schedule.name = "plateau"
    # min_delta 1.0: no evaluation after the first counts as an improvement, so the rate drops at
    # each of them (patience 1), whatever the errors are.
    config.schedule.patience, config.schedule.min_delta, config.schedule.max_reductions = 1, 1.0, 2
    return config


def _rates(workdir):
    records = read_metrics(str(workdir))
    return {r["step"]: r["train/learning_rate"] for r in records if "train/learning_rate" in r}


def _state(workdir, step):
    return ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(step) / "state")


def test_plateau_lowers_the_rate_after_evaluations_and_a_resume_continues_exactly(mnist_split, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_and_evaluate(_config(40), str(straight))
    peak = _rates(straight)[10]
    # Evaluations at 10, 20, 30, 40: the first sets the best, the next two lower the rate, the
    # fourth would but max_reductions is 2. Each window's rate is logged before its evaluation.
    np.testing.assert_allclose([_rates(straight)[s] / peak for s in (10, 20, 30, 40)], [1, 1, 0.1, 0.01])

    # Stopped at 20 (its checkpoint holds the rule before the evaluation of step 20), then resumed.
    train_and_evaluate(_config(20), str(resumed))
    config = _config(40)
    config.resume.allow_changes = "num_train_steps"
    train_and_evaluate(config, str(resumed))
    assert _rates(resumed) == _rates(straight)
    a, b = _state(straight, 40), _state(resumed, 40)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)
