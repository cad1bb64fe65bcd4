"""``attnlab train --model`` choices, derived from the attention registry's capabilities."""

import pytest

from attnlab.registry import ATTENTION, TASKS
from attnlab.training.recipes import RECIPES, check_fits, choices, model_config

CHOICES = choices()


def test_every_mechanism_and_recipe_is_a_choice():
    assert list(CHOICES) == [*ATTENTION.names(), *RECIPES]


@pytest.mark.parametrize("name", ATTENTION.names())
def test_a_mechanism_choice_follows_its_capabilities(name):
    m, choice = ATTENTION.get(name), CHOICES[name]
    assert choice.self_attention == name
    assert choice.cross_attention == (name if m.cross else "multihead")
    assert choice.tasks == (("lm",) if m.always_causal else ("seq2seq", "lm"))
    assert choice.heads == (m.heads or ("seq2seq" in choice.tasks
                                        and ATTENTION.get(choice.cross_attention).heads))


@pytest.mark.parametrize("name", list(CHOICES))
@pytest.mark.parametrize("task", ["reverse", "text"])
def test_each_choice_builds_its_config_or_says_why_not(name, task):
    kind = TASKS.get(task).kind
    if kind not in CHOICES[name].tasks:
        with pytest.raises(ValueError, match=f"--model {name} does not fit --task {task}"):
            check_fits(name, kind, task)
        return
    config = model_config(name, kind, vocab_size=20, max_len=16, embed_dim=16, num_heads=4,
                          num_layers=1, dropout=0.0, positions=None)
    assert config.attention == CHOICES[name].self_attention
    assert config.arch == ("encoder-decoder" if kind == "seq2seq" else "decoder")


def test_the_cross_recipe_reads_the_source_through_one_head():
    assert (RECIPES["cross"].self_attention, RECIPES["cross"].cross_attention) == \
        ("multihead", "selfhead")
    assert RECIPES["cross"].tasks == ("seq2seq",)
