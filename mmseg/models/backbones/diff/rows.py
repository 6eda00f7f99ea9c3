"""Which conditioning rows one UNet call evaluates, and the fresh noise of every branch.

The release evaluates, per image, one row for the negative prompt, one for the global prompt
and one per path-control class: (2 + k) rows. Rows with the same prompt (and, within one step,
always the same latent) give the same output, so the plan evaluates each distinct prompt once
and remembers how many release rows it stands for; with the default empty prompt and negative
prompt that is (1 + k) rows. A plan counts row GROUPS: each group holds the B images of the
batch, so a call evaluates ``num_groups * B`` batch rows.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .config import DIFFConfig
from .inversion import InversionStep


@dataclass(frozen=True)
class RowPlan:
    """The row groups of one UNet call (each group holds the B images, group-major).

    Attributes:
        prompt_indices: Index into the prompt list for every row group.
        multiplicities: How many of the release's row groups each group stands for.
        uncond_group: Group of the negative prompt (ResNet features and CFG baseline).
        branch_groups: Group of each latent branch: the global prompt, then one per class.
    """

    prompt_indices: Tuple[int, ...]
    multiplicities: Tuple[int, ...]
    uncond_group: int
    branch_groups: Tuple[int, ...]

    @property
    def num_groups(self) -> int:
        """Row groups of the call (batch rows = num_groups * B)."""
        return len(self.prompt_indices)

    @property
    def num_branches(self) -> int:
        return len(self.branch_groups)


def plan_rows(classes: Sequence[int], config: DIFFConfig, prompts: Sequence[str]) -> RowPlan:
    """The rows for one step with path-control branches for ``classes``.

    Args:
        classes: Train ids with a branch at this step (may be empty).
        config: Supplies the prompts.
        prompts: The prompt list that ``prompt_indices`` index.
    """
    release = [config.negative_prompt, config.prompt] + [config.label_prompts[c] for c in classes]
    groups: List[int] = []  # group of each release row
    indices: List[int] = []
    for text in release:
        index = prompts.index(text)
        if index in indices:
            groups.append(indices.index(index))
        else:
            groups.append(len(indices))
            indices.append(index)
    multiplicities = tuple(groups.count(g) for g in range(len(indices)))
    return RowPlan(tuple(indices), multiplicities, groups[0], tuple(groups[1:]))


def draw_step_noise(steps: Sequence[InversionStep], plans: Sequence[RowPlan],
                    latent_shape: torch.Size, generator: Optional[Sequence[torch.Generator]],
                    device: torch.device) -> Dict[int, Tensor]:
    """Fresh noise (num_branches, B, C, h, w) for every stochastic step among ``steps``.

    Draws happen step by step, branch by branch, so a run with fewer steps draws a prefix of
    the same numbers. With generators, image b's noise comes from ``generator[b]`` alone, on
    the generator's device, and is moved to ``device`` in one transfer.
    """
    batch, shape = latent_shape[0], tuple(latent_shape[1:])
    drawn: Dict[int, Tensor] = {}
    for step in steps:
        if not step.stochastic:
            continue
        branches = plans[step.index].num_branches
        if generator is None:
            drawn[step.index] = torch.randn((branches, batch, *shape), device=device)
        else:
            home = generator[0].device
            drawn[step.index] = torch.stack([
                torch.randn((branches, *shape), generator=g, device=g.device).to(home)
                for g in generator
            ], dim=1)
    if generator is None or not drawn:
        return drawn
    flat = torch.cat([t.flatten() for t in drawn.values()]).to(device)
    out, start = {}, 0
    for index, tensor in drawn.items():
        out[index] = flat[start:start + tensor.numel()].view(tensor.shape)
        start += tensor.numel()
    return out
