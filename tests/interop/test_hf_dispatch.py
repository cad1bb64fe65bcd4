"""from_hf's registry: dispatch on config.model_type, head classes, errors, the CLI listing."""

import pytest
from torch import nn

transformers = pytest.importorskip("transformers")

from attnlab.cli.models import sections  # noqa: E402
from attnlab.interop import from_hf  # noqa: E402
from attnlab.interop.hf import ARCHITECTURES, register, supported_classes  # noqa: E402

FAMILIES = ["gpt2", "llama", "mistral", "qwen2", "gemma", "phi3", "gpt_neox", "opt", "bert",
            "roberta", "distilbert", "t5", "bart", "marian"]


def test_every_family_is_registered_with_its_classes():
    assert sorted(ARCHITECTURES) == sorted(FAMILIES)
    for arch in ARCHITECTURES.values():
        for name in arch.heads:  # every class exists in transformers and has that model_type
            cls = getattr(transformers, name)
            assert cls.config_class.model_type == arch.model_type, name


def test_dispatch_is_by_model_type_not_by_class_name():
    class Renamed(transformers.MistralForCausalLM):  # a user subclass still converts
        pass

    config = transformers.MistralConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=1,
                                        intermediate_size=9, max_position_embeddings=16)
    lm = from_hf(Renamed(config).eval())
    assert lm.config.window == config.sliding_window


def test_unknown_architecture_lists_the_supported_ones():
    config = transformers.BloomConfig(vocab_size=20, hidden_size=8, n_layer=1, n_head=2)
    with pytest.raises(TypeError, match=r"from_hf supports BartForConditionalGeneration, .*"
                                        r"T5ForConditionalGeneration from transformers; "
                                        r"got .*BloomForCausalLM$"):
        from_hf(transformers.BloomForCausalLM(config))
    with pytest.raises(TypeError, match=r"got torch.nn.modules.linear.Linear$"):
        from_hf(nn.Linear(2, 2))


def test_register_refuses_duplicates_and_unknown_heads():
    with pytest.raises(ValueError, match="'gpt2' is already registered"):
        register("gpt2", "hf_gpt2:from_gpt2", {"GPT2Model": "base"}, "")
    with pytest.raises(ValueError, match="head kinds must be one of"):
        register("new_family", "x:y", {"NewModel": "classifier"}, "")
    assert "new_family" not in ARCHITECTURES


def test_attnlab_models_lists_the_architectures():
    listing = dict(sections())
    rows = dict(listing["Hugging Face architectures (attnlab.interop.from_hf)"])
    assert sorted(rows) == sorted(FAMILIES)
    assert "GPT2Model" in rows["gpt2"]
    assert "sliding-window" in rows["mistral"]
    assert set(supported_classes()) == {name for arch in ARCHITECTURES.values()
                                        for name in arch.heads}


def test_cli_prints_them(capsys):
    from attnlab.cli.main import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "Hugging Face architectures" in out
    assert "T5ForConditionalGeneration" in out
