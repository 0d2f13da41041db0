"""The objectives against their definitions, computed independently with numpy."""

import numpy as np
import pytest
import torch

from training.objectives import cosine, mse, objective


def test_mse_is_keras_mean_over_every_element():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    expected = np.mean(np.mean(np.square(student - teacher), axis=-1))  # keras: per row, then batch
    assert float(mse(torch.tensor(student), torch.tensor(teacher))) == pytest.approx(expected)


def test_cosine_ignores_length_and_is_zero_at_the_target():
    teacher = torch.randn(4, 8)
    assert float(cosine(3 * teacher, teacher)) == pytest.approx(0, abs=1e-6)
    assert float(cosine(-teacher, teacher)) == pytest.approx(2)


def test_an_unknown_objective_is_refused_by_name():
    with pytest.raises(ValueError, match="'l1'.*mse, cosine"):
        objective("l1")
