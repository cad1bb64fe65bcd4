"""Short fixed-step runs: every task and every mechanism actually learns."""

import math

import pytest
import torch

from attnlab.training import TrainConfig
from attnlab.training.recipes import choices
from attnlab.training.trainer import Trainer

MODELS = choices()

SEQ2SEQ_TASKS = ["copy", "reverse", "sort", "recall", "dates"]


def learn(config: TrainConfig) -> tuple[float, float, dict[str, float], Trainer]:
    trainer = Trainer(config, torch.device("cpu"))
    first = trainer.evaluate()["val_loss"]
    while trainer.step < config.total_steps:
        trainer.train_step()
    after = trainer.evaluate()
    return first, after["val_loss"], after, trainer


@pytest.mark.parametrize("task", SEQ2SEQ_TASKS)
def test_each_seq2seq_task_learns(task):
    config = TrainConfig(task=task, embed_dim=32, num_heads=4, num_layers=1, epochs=1,
                         steps_per_epoch=120, learning_rate=3e-3, warmup_steps=10,
                         eval_batches=2, seq_length=5)
    before, after, metrics, trainer = learn(config)
    assert after < 0.8 * before
    chance = 1 / (len(trainer.task.vocab) - 3)  # uniform over the task's own symbols
    assert metrics["token_acc"] > chance


def test_text_task_learns():
    config = TrainConfig(task="text", model="causal", embed_dim=32, num_heads=4, num_layers=1,
                         epochs=1, steps_per_epoch=120, learning_rate=3e-3, warmup_steps=10,
                         eval_batches=2, seq_length=32)
    before, after, metrics, trainer = learn(config)
    assert after < 0.8 * before
    assert metrics["bits_per_char"] < math.log2(len(trainer.task.vocab)) - 1


@pytest.mark.parametrize("model", [m for m in MODELS if "seq2seq" in MODELS[m].tasks])
def test_each_mechanism_learns_copy(model):
    heads = 4 if MODELS[model].heads else 1
    config = TrainConfig(task="copy", model=model, embed_dim=24, num_heads=heads, num_layers=1,
                         epochs=1, steps_per_epoch=80, learning_rate=3e-3, warmup_steps=10,
                         eval_batches=1, seq_length=4)
    before, after, metrics, _ = learn(config)
    assert after < 0.85 * before, (before, after)


@pytest.mark.parametrize(("model", "task", "match"), [
    ("causal", "reverse",
     r"--model causal does not fit --task reverse \(a seq2seq task\): it needs the text task"),
    ("cross", "text",
     r"--model cross does not fit --task text \(a lm task\): it needs a seq2seq task "
     r"\(copy, reverse, sort, recall, dates\)"),
])
def test_impossible_pairings_are_refused(model, task, match):
    with pytest.raises(ValueError, match=match):
        Trainer(TrainConfig(model=model, task=task), torch.device("cpu"))
