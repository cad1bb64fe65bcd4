"""Task model defaults (``Task.model_defaults``) and the embedding init they choose."""

import pytest
import torch

from attnlab.config import ModelConfig
from attnlab.models import build_model as build
from attnlab.training.train_config import TrainConfig
from attnlab.training.trainer import build_task, model_for_task


def _model(**options):
    config = TrainConfig(**options)
    return model_for_task(config, build_task(config))


def test_recall_starts_with_unit_learned_positions():
    model = _model(task="recall")
    assert model.config.positions == "learned"
    assert model.config.embed_std == 1.0
    assert not model.config.embed_scale
    positions = model.embed.positions.embedding.weight
    tokens = model.embed.tokens.weight
    # 64 x 23 and 64 x 40 draws of N(0, 1): the sample std is within a few percent of 1
    assert 0.9 < float(positions.detach().std()) < 1.1
    assert 0.9 < float(tokens.detach().std()) < 1.1


@pytest.mark.parametrize("positions", ["sinusoidal", "learned", "rotary"])
def test_positions_option_replaces_the_task_defaults(positions):
    model = _model(task="recall", positions=positions)
    assert model.config.positions == positions
    assert model.config.embed_scale == (positions == "sinusoidal")
    assert model.config.embed_std == 0.02
    assert float(model.embed.tokens.weight.detach().std()) < 0.03


@pytest.mark.parametrize("task", ["copy", "reverse", "sort", "dates", "text"])
def test_other_tasks_keep_the_small_init(task):
    model = _model(task=task)
    assert model.config.embed_std == 0.02
    for name, p in model.named_parameters():
        if "positions" in name:
            assert float(p.detach().std()) < 0.03, name


def test_embed_std_is_used_and_checked():
    torch.manual_seed(0)
    model = build(ModelConfig(vocab_size=300, embed_dim=40, embed_std=0.5))
    assert abs(float(model.embed.tokens.weight.detach().std()) - 0.5) < 0.03
    with pytest.raises(ValueError, match="embed_std"):
        ModelConfig(embed_std=0.0)
    with pytest.raises(ValueError, match="embed_std"):
        ModelConfig(embed_std=-1.0)


def test_model_config_refuses_a_pairing_without_a_task_name():
    from attnlab.training.recipes import model_config

    with pytest.raises(ValueError, match=r"--model causal does not fit a seq2seq task: it needs "
                                         r"the text task; for this task choose from: multihead"):
        model_config("causal", "seq2seq", vocab_size=10, max_len=8, embed_dim=8, num_heads=2,
                     num_layers=1, dropout=0.0, positions=None)
