"""The stochastic DDIM inversion of the DIFF release: schedule, update rule, branch averaging.

Step i evaluates the UNet at t_i and moves the latent to t_{i+1}, where the ascending list
t_1 < t_2 < ... holds the configured timesteps and t_0 = 0. With a = alpha_bar(t_i) and
a' = alpha_bar(t_{i+1}) (alpha_bar(t) = prod_{s<=t}(1 - beta_s), so alpha_bar(0) < 1):

    x0_hat = (x - sqrt(1 - a) eps) / sqrt(a)
    c1     = eta_i sqrt((1 - a'/a) (1 - a') / (1 - a))
    c2     = sqrt(max((1 - a') - c1^2, 1e-10))
    x'     = sqrt(a') x0_hat + c1 z + c2 eps,       z ~ N(0, I)

with eta_i = eta when eta_min < t_i < eta_max (strict) and 0 otherwise.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

from torch import Tensor

# Lower bound of c2^2, as in the release.
C2_SQUARED_FLOOR = 1e-10


@dataclass(frozen=True)
class InversionStep:
    """One step of the inversion, with its coefficients as Python floats (no device sync)."""

    index: int
    timestep: int  # t_i: where the UNet is evaluated
    next_timestep: int  # t_{i+1}: where the update moves the latent
    alpha: float  # alpha_bar(t_i)
    next_alpha: float  # alpha_bar(t_{i+1})
    c1: float  # weight of fresh noise (0 outside the eta window)
    c2: float  # weight of the predicted noise

    @property
    def stochastic(self) -> bool:
        """Whether the update draws fresh noise."""
        return self.c1 > 0.0


def build_inversion_steps(timesteps: Sequence[int], alphas_cumprod: Sequence[float], eta: float,
                          eta_min_timestep: int, eta_max_timestep: int) -> List[InversionStep]:
    """The inversion steps for ``timesteps`` (given in descending order, as configured).

    Args:
        timesteps: Diffusion timesteps, strictly descending, all > 0.
        alphas_cumprod: alpha_bar for every training timestep (the scheduler's).
        eta: Stochasticity inside the window.
        eta_min_timestep: eta applies when eta_min_timestep < t_i (strict).
        eta_max_timestep: ... and t_i < eta_max_timestep (strict).

    Raises:
        ValueError: a timestep is outside the scheduler's range.
    """
    ascending = sorted(timesteps)
    if ascending[-1] >= len(alphas_cumprod):
        raise ValueError(f'DIFF config key \'timesteps\': expected values < '
                         f'{len(alphas_cumprod)} (the scheduler\'s num_train_timesteps), '
                         f'got {ascending[-1]}')
    current = [0] + ascending[:-1]
    steps = []
    for index, (t, t_next) in enumerate(zip(current, ascending)):
        a, a_next = float(alphas_cumprod[t]), float(alphas_cumprod[t_next])
        eta_i = eta if eta_min_timestep < t < eta_max_timestep else 0.0
        c1 = eta_i * math.sqrt((1.0 - a_next / a) * (1.0 - a_next) / (1.0 - a))
        c2 = math.sqrt(max((1.0 - a_next) - c1 * c1, C2_SQUARED_FLOOR))
        steps.append(InversionStep(index, t, t_next, a, a_next, c1, c2))
    return steps


def v_to_epsilon(v: Tensor, x: Tensor, step: InversionStep) -> Tensor:
    """Convert a v-prediction at t_i into the noise prediction: eps = sqrt(a) v + sqrt(1-a) x."""
    return math.sqrt(step.alpha) * v + math.sqrt(1.0 - step.alpha) * x


def inversion_update(x: Tensor, eps: Tensor, step: InversionStep,
                     noise: Optional[Tensor]) -> Tensor:
    """Move ``x`` from t_i to t_{i+1} for every branch.

    Args:
        x: Latent at t_i, (B, C, h, w); shared by all branches.
        eps: Noise prediction per branch, (P, B, C, h, w).
        step: The step.
        noise: Fresh noise per branch, (P, B, C, h, w); required when ``step.stochastic``.

    Returns:
        The latent of every branch at t_{i+1}, (P, B, C, h, w).
    """
    x0 = (x - math.sqrt(1.0 - step.alpha) * eps) / math.sqrt(step.alpha)
    out = math.sqrt(step.next_alpha) * x0 + step.c2 * eps
    if step.stochastic:
        out = out + step.c1 * noise
    return out


def average_in_masks(branches: Tensor, masks: Tensor) -> Tensor:
    """Per-pixel average of the branch latents over the branches whose mask covers the pixel.

    Args:
        branches: (P, B, C, h, w) latents; branch 0 is the global one.
        masks: (P, B, 1, h, w) binary masks; mask 0 is all ones, so every count is >= 1.
    """
    return (branches * masks).sum(0) / masks.sum(0)
