"""The inversion schedule and update rule against docs/method.md §1.5-1.6 (hand values)."""
import math

import pytest
import torch
from diffusers import DDIMScheduler
from diff_helpers import diff

from diff.inversion import (average_in_masks, build_inversion_steps, inversion_update,
                            v_to_epsilon)


@pytest.fixture(scope='module')
def released_steps():
    config = diff.DIFFConfig()
    scheduler = DDIMScheduler(beta_schedule='scaled_linear', beta_start=0.00085, beta_end=0.012)
    return build_inversion_steps(config.timesteps, scheduler.alphas_cumprod.tolist(), config.eta,
                                 config.eta_min_timestep, config.eta_max_timestep)


def test_unet_timesteps_and_targets(released_steps):
    assert len(released_steps) == 37
    evaluated = [s.timestep for s in released_steps]
    assert evaluated == list(range(0, 24)) + [26, 30, 34, 40, 45, 52, 60, 69, 80, 91, 105, 121,
                                              139]
    assert [s.next_timestep for s in released_steps] == evaluated[1:] + [160]
    saved = diff.DIFFConfig().saved_steps
    assert [released_steps[i].timestep for i in saved] == [91, 52, 30, 22, 18, 14, 11, 7, 3]


def test_alpha_bar_and_eta_window(released_steps):
    by_t = {s.timestep: s for s in released_steps}
    for t, alpha in [(3, 0.99658), (7, 0.99309), (11, 0.98954), (22, 0.97944), (91, 0.90524)]:
        assert by_t[t].alpha == pytest.approx(alpha, abs=5e-6)
    # eta applies for 10 < t < 250 (strict): steps 0-10 are deterministic.
    assert [s.stochastic for s in released_steps] == [False] * 11 + [True] * 26
    assert by_t[10].c1 == 0.0 and by_t[11].c1 > 0.0


@pytest.mark.parametrize('index, c1, c2', [(11, 0.031, 0.102), (22, 0.032, 0.143),
                                           (29, 0.103, 0.220), (33, 0.150, 0.299),
                                           (36, 0.204, 0.380)])
def test_coefficients_match_the_reference_table(released_steps, index, c1, c2):
    step = released_steps[index]
    assert step.c1 == pytest.approx(c1, abs=6e-4) and step.c2 == pytest.approx(c2, abs=6e-4)
    # Unclamped: c1^2 + c2^2 = 1 - a'.
    assert step.c1 ** 2 + step.c2 ** 2 == pytest.approx(1 - step.next_alpha, rel=1e-9)


def test_c2_is_floored():
    steps = build_inversion_steps([2, 1], [0.9, 0.8, 0.7], eta=100.0, eta_min_timestep=-1,
                                  eta_max_timestep=5)
    assert steps[1].c2 == pytest.approx(math.sqrt(1e-10))


def test_update_by_hand(released_steps):
    step = released_steps[33]
    x, eps, z = torch.randn(1, 4, 2, 2), torch.randn(2, 1, 4, 2, 2), torch.randn(2, 1, 4, 2, 2)
    a, a_next = step.alpha, step.next_alpha
    x0 = (x - (1 - a) ** 0.5 * eps) / a ** 0.5
    expected = a_next ** 0.5 * x0 + step.c1 * z + step.c2 * eps
    torch.testing.assert_close(inversion_update(x, eps, step, z), expected)
    deterministic = released_steps[5]
    out = inversion_update(x, eps, deterministic, None)  # DDIM inversion, no noise
    a, a_next = deterministic.alpha, deterministic.next_alpha
    ddim = a_next ** 0.5 * (x - (1 - a) ** 0.5 * eps) / a ** 0.5 + (1 - a_next) ** 0.5 * eps
    torch.testing.assert_close(out, ddim)


def test_v_prediction_to_epsilon(released_steps):
    step = released_steps[20]
    a = step.alpha
    x0, eps = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    x_t = a ** 0.5 * x0 + (1 - a) ** 0.5 * eps
    v = a ** 0.5 * eps - (1 - a) ** 0.5 * x0
    torch.testing.assert_close(v_to_epsilon(v, x_t, step), eps)


def test_average_inside_masks():
    branches = torch.tensor([1.0, 3.0, 8.0]).view(3, 1, 1, 1, 1).expand(3, 1, 1, 1, 2)
    masks = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]).view(3, 1, 1, 1, 2)
    # Pixel 0: global and branch 1 -> 2; pixel 1: global only -> 1.
    assert average_in_masks(branches, masks).flatten().tolist() == [2.0, 1.0]


def test_timesteps_beyond_the_scheduler_are_an_error():
    with pytest.raises(ValueError, match="'timesteps'"):
        build_inversion_steps([1000, 5], [0.9] * 1000, 1.0, 10, 250)
