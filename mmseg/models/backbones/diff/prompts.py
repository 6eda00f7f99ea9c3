"""Text conditioning of the UNet: prompt embeddings from the frozen text encoder(s), computed
once, and the extra inputs that some UNets take on every call.

What the model folder holds decides how prompts are embedded (no model is named here):

- one text encoder (``text_encoder/`` and ``tokenizer/``): a prompt's embedding is the encoder's
  last hidden state;
- two (also ``text_encoder_2/`` and ``tokenizer_2/``, a CLIP text model with projection): the
  embedding is the two encoders' penultimate hidden states concatenated along the width, and the
  pooled text embedding is the second encoder's projected output, as diffusers' pipelines for
  such UNets compute them.

A UNet whose config has ``addition_embed_type: text_time`` takes on every call, besides the
embedding, diffusers' ``added_cond_kwargs``: ``text_embeds``, the pooled embedding of each
row's prompt, and ``time_ids``, six numbers per row: the original height and width, the crop's
top and left, and the target height and width. Every row gets the input image's own size as
original and target size and a (0, 0) crop (:data:`CROP_TOP_LEFT`), the pipelines' values for
an uncropped image generated at its own size. :class:`TextConditioning` holds both and returns
the keyword arguments of each UNet call.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

# The crop's top-left corner in the size/crop time ids: none.
CROP_TOP_LEFT = (0, 0)
# original (h, w) + crop (top, left) + target (h, w)
NUM_TIME_IDS = 6
# UNet config values of addition_embed_type that this module serves.
ADDED_CONDITIONING = (None, 'text_time')

TextTower = Tuple[Any, nn.Module]  # (tokenizer, text encoder)


def text_towers(components: Any) -> List[TextTower]:
    """The ``(tokenizer, text_encoder)`` pairs of loaded components: the first, and the
    second when the folder had one (``SDComponents.text_encoder_2``)."""
    towers = [(components.tokenizer, components.text_encoder)]
    if components.text_encoder_2 is not None:
        towers.append((components.tokenizer_2, components.text_encoder_2))
    return towers


@torch.no_grad()
def encode_text(towers: Sequence[TextTower], prompts: Sequence[str]
                ) -> Tuple[Tensor, Optional[Tensor]]:
    """Embed ``prompts`` with one or two text towers, each padded to its maximum length.

    Args:
        towers: ``(tokenizer, text_encoder)`` pairs: one (last hidden state) or two
            (penultimate hidden states concatenated; the second encoder's ``text_embeds``
            is the pooled embedding).
        prompts: The texts.

    Returns:
        ``(hidden_states, pooled)``: (len(prompts), length, width) on the first encoder's
        device, and (len(prompts), projection width) or None with one tower.
    """
    if len(towers) not in (1, 2):
        raise ValueError(f'DIFF prompts: expected one or two text encoders, got {len(towers)}')
    pair = len(towers) == 2
    device = next(towers[0][1].parameters()).device
    hidden, output = [], None
    for tokenizer, encoder in towers:
        tokens = tokenizer(list(prompts), padding='max_length',
                           max_length=tokenizer.model_max_length, truncation=True,
                           return_tensors='pt').input_ids.to(device)
        output = encoder(tokens, output_hidden_states=pair)
        hidden.append(output.hidden_states[-2] if pair else output.last_hidden_state)
    pooled = output.text_embeds if pair else None
    return torch.cat(hidden, dim=-1), pooled


def encode_prompts(tokenizer: Any, text_encoder: nn.Module, prompts: Sequence[str]) -> Tensor:
    """Embed ``prompts`` with one text tower (its last hidden state); see :func:`encode_text`."""
    return encode_text([(tokenizer, text_encoder)], prompts)[0]


class TextConditioning(nn.Module):
    """The UNet's text conditioning for a fixed list of prompts, embedded once.

    Its tensors are non-persistent buffers: they move with the module and stay out of
    ``state_dict()``. The text encoders are not kept.

    Args:
        towers: ``(tokenizer, text_encoder)`` pairs (see :func:`encode_text`).
        prompts: Every prompt the UNet will be called with; rows name them by index.
        unet: The UNet, whose config says which extra inputs it takes.
        latent_factor: Image-to-latent downsampling (the time ids hold image sizes).

    Raises:
        ValueError: the UNet needs conditioning the text towers cannot give (a pooled
            embedding from a single tower, another number of time ids, another
            ``addition_embed_type``); the message names the UNet config's values.
    """

    def __init__(self, towers: Sequence[TextTower], prompts: Sequence[str], unet: nn.Module,
                 latent_factor: int):
        super().__init__()
        for _, encoder in towers:
            encoder.requires_grad_(False).eval()
        hidden, pooled = encode_text(towers, prompts)
        kind = unet.config.addition_embed_type
        if kind not in ADDED_CONDITIONING:
            raise ValueError(f'DIFF: the UNet config\'s addition_embed_type {kind!r} is not '
                             f'supported; expected one of {list(ADDED_CONDITIONING)}')
        if kind is None:
            pooled = None  # the UNet takes no pooled embedding
        else:
            _check_text_time(unet, pooled)
        self.register_buffer('hidden_states', hidden, persistent=False)
        self.register_buffer('pooled', pooled, persistent=False)
        self.latent_factor = latent_factor
        self._time_ids: Dict[Tuple[int, int, torch.device], Tensor] = {}

    @property
    def num_prompts(self) -> int:
        return self.hidden_states.shape[0]

    def unet_kwargs(self, prompt_rows: Sequence[int], latents: Tensor) -> Dict[str, Any]:
        """Keyword arguments of one UNet call, besides the latents and the timestep.

        Args:
            prompt_rows: The prompt index of every row of the call, in row order.
            latents: The call's input, (len(prompt_rows), C, h, w); the image size in the
                time ids is (h, w) times ``latent_factor``.

        Returns:
            ``encoder_hidden_states`` (rows, length, width) and, for a ``text_time`` UNet,
            ``added_cond_kwargs`` with ``text_embeds`` (rows, width) and ``time_ids``
            (rows, 6). Rows are picked with Python indices (no index tensor is copied to
            the device).
        """
        kwargs: Dict[str, Any] = dict(
            encoder_hidden_states=torch.stack([self.hidden_states[i] for i in prompt_rows]))
        if self.pooled is not None:
            time_ids = self.time_ids(latents.shape[-2:], latents.device)
            kwargs['added_cond_kwargs'] = dict(
                text_embeds=torch.stack([self.pooled[i] for i in prompt_rows]),
                time_ids=time_ids.expand(len(prompt_rows), -1))
        return kwargs

    def time_ids(self, latent_size: Sequence[int], device: torch.device) -> Tensor:
        """(1, 6) float32: original size, crop top-left, target size of the image whose
        latent is ``latent_size``; built once per size and device."""
        height, width = (int(side) * self.latent_factor for side in latent_size)
        key = (height, width, device)
        if key not in self._time_ids:
            values: List[int] = [height, width, *CROP_TOP_LEFT, height, width]
            self._time_ids[key] = torch.tensor([values], dtype=torch.float32, device=device)
        return self._time_ids[key]


def _check_text_time(unet: nn.Module, pooled: Optional[Tensor]) -> None:
    """A ``text_time`` UNet needs a pooled embedding and room for exactly six time ids."""
    if pooled is None:
        raise ValueError('DIFF: the UNet (addition_embed_type \'text_time\') needs a pooled text '
                         'embedding on every call: the model folder needs text_encoder_2/ and '
                         'tokenizer_2/ (a CLIP text model with projection) besides '
                         'text_encoder/ and tokenizer/')
    time_width = unet.config.addition_time_embed_dim
    expected = unet.add_embedding.linear_1.in_features
    given = pooled.shape[-1] + NUM_TIME_IDS * time_width
    if given != expected:
        raise ValueError(f'DIFF: the UNet\'s added embedding takes {expected} inputs, but the '
                         f'pooled embedding ({pooled.shape[-1]} wide) and {NUM_TIME_IDS} time '
                         f'ids (original size, crop, target size) x addition_time_embed_dim '
                         f'({time_width}) give {given}')
