"""The attention of a pretrained language model (e.g. SmolLM2 from a GGUF file) on token ids.

:func:`inspect_tokens` runs a ``DecoderLM`` once over given ids inside
``capture_attention`` and labels both axes with each token's text;
:func:`attended_prompt` reduces what an answer attended to into one weight
per prompt token (what ``attnlab chat``'s ``:attn`` prints).

Shape letters: H heads, L tokens (prompt + answer), P prompt tokens.
"""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .capture import attention_modules, capture_attention
from .inspect import DECODER_SELF, Inspection, token_label


@torch.no_grad()
def inspect_tokens(model: nn.Module, ids: Sequence[int], labels: Sequence[str], *,
                   text: str, output: str = "", only: Sequence[str] | None = None,
                   notes: Sequence[str] = ()) -> Inspection:
    """Capture every (or the ``only``) self-attention map of ``model`` reading ``ids``.

    Args:
        model: A decoder language model taking ``(1, L)`` ids.
        ids: The tokens (prompt, then any answer), at most the model's context.
        labels: Each token's text (``len(ids)`` of them), made printable here.
        text: What the model read, for titles.
        output: What it wrote ("" if nothing), for titles.
        only: Glob patterns of the modules to capture (default: all).
        notes: Remarks to show with the pictures.

    Returns:
        An :class:`~attnlab.visualize.inspect.Inspection` of kind ``"lm"``:
        ``maps[name]`` is ``(1, H, L, L)``.

    Raises:
        ValueError: If ``ids`` is empty or ``labels`` does not match it.
    """
    if len(ids) == 0:
        raise ValueError("ids must hold at least one token")
    if len(labels) != len(ids):
        raise ValueError(f"labels must have one entry per token: {len(labels)} labels, "
                         f"{len(ids)} ids")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with capture_attention(model, only=list(only) if only else None) as captured:
            model(torch.tensor([list(ids)], device=device))
    finally:
        model.train(was_training)
    names = [n for n in attention_modules(model) if n in captured]
    shown = [token_label(label) for label in labels]
    maps = {n: captured[n].float().cpu() for n in names}
    return Inspection(maps, {n: (shown, shown) for n in names},
                      dict.fromkeys(names, DECODER_SELF), text, output, "lm", list(notes))


def attended_prompt(maps: dict[str, Tensor], prompt_len: int, *, head: int | None = None) -> Tensor:
    """How much the answer attended to each prompt token, averaged.

    Position ``t`` reads token ``t`` and predicts token ``t + 1``, so the rows
    that produced the answer are ``prompt_len - 1 ... L - 2``. Their weights on
    the ``P`` prompt columns are averaged over those rows, the given modules and
    the heads (or one ``head``).

    Args:
        maps: ``{module: (1, H, L, L)}`` weights.
        prompt_len: ``P``, the prompt's tokens (``1 <= P < L``).
        head: One head, or None for the mean over heads.

    Returns:
        ``(P,)`` weights (the mean share of attention each prompt token received).
    """
    rows = []
    for weights in maps.values():
        L = weights.shape[-1]
        if not 1 <= prompt_len < L:
            raise ValueError(f"prompt_len must lie in [1, {L}), got {prompt_len}")
        chosen = weights[0] if head is None else weights[0, head:head + 1]  # (H, L, L)
        rows.append(chosen[:, prompt_len - 1:L - 1, :prompt_len].mean(dim=(0, 1)))  # (P,)
    return torch.stack(rows).mean(dim=0)  # (P,)
