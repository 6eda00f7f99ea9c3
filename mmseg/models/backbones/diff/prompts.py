"""Text embeddings of the prompts, computed with the frozen CLIP text encoder."""
from typing import Any, Sequence

import torch
from torch import Tensor, nn


@torch.no_grad()
def encode_prompts(tokenizer: Any, text_encoder: nn.Module, prompts: Sequence[str]) -> Tensor:
    """Embed ``prompts`` as Stable Diffusion does: padded to the tokenizer's maximum length.

    Args:
        tokenizer: A CLIP tokenizer (its ``model_max_length`` is the sequence length, 77 for SD).
        text_encoder: The CLIP text model; its last hidden state is the embedding.
        prompts: The texts.

    Returns:
        Tensor of shape (len(prompts), max_length, hidden_size) on the encoder's device.
    """
    device = next(text_encoder.parameters()).device
    tokens = tokenizer(list(prompts), padding='max_length', max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors='pt')
    return text_encoder(tokens.input_ids.to(device)).last_hidden_state
