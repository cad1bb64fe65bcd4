"""Transformers built from attnlab's mechanisms: encoder, decoder-only LM, encoder–decoder."""

from ..config import ModelConfig
from ..registry import PRESETS
from .decoder import DecoderLM, DecoderModel
from .encoder import TransformerEncoder
from .seq2seq import EncoderDecoder
from .seq2seq_lm import Seq2SeqLM

ARCHITECTURES = {"encoder": TransformerEncoder, "decoder": DecoderLM,
                 "encoder-decoder": EncoderDecoder}


def build_model(config: ModelConfig) -> TransformerEncoder | DecoderLM | EncoderDecoder:
    """Build the model ``config.arch`` names."""
    return ARCHITECTURES[config.arch](config)


PRESETS.register("gpt", ModelConfig(arch="decoder", positions="learned", norm="layernorm",
                                    activation="gelu_tanh"), help="GPT-2-style decoder")
PRESETS.register("llama", ModelConfig(arch="decoder", positions="rotary", norm="rmsnorm",
                                      ffn="swiglu", bias=False, num_kv_heads=2,
                                      tie_embeddings=False), help="Llama-style decoder (GQA)")
PRESETS.register("bert", ModelConfig(arch="encoder", positions="learned", prenorm=False,
                                     embed_norm=True, type_vocab_size=2),
                 help="BERT-style post-norm encoder")
PRESETS.register("transformer", ModelConfig(arch="encoder-decoder", positions="sinusoidal",
                                            prenorm=False, activation="relu", embed_scale=True),
                 help="the original encoder-decoder (Vaswani et al. 2017)")

__all__ = ["ARCHITECTURES", "DecoderLM", "DecoderModel", "EncoderDecoder", "ModelConfig",
           "Seq2SeqLM", "TransformerEncoder", "build_model"]
