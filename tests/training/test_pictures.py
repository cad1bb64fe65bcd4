"""The pictures a finished training run leaves (``attnlab.training.pictures``)."""

import json
from types import SimpleNamespace

import pytest
from matplotlib.image import imread

from attnlab.training.pictures import draw_run_pictures
from attnlab.training.train_config import TrainConfig
from attnlab.training.trainer import build_task, model_for_task


@pytest.fixture(scope="module")
def run():
    config = TrainConfig(task="reverse", embed_dim=8, num_heads=2, seq_length=5)
    task = build_task(config)
    return SimpleNamespace(model=model_for_task(config, task).eval(), task=task, config=config)


def test_draw_run_pictures_writes_curves_attention_and_alignment(run, tmp_path):
    records = [{"step": s, "train_loss": 3.0 - s / 10, "val_loss": 3.1 - s / 10,
                "token_acc": s / 10, "seq_acc": s / 20} for s in (1, 2, 3)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "attention.png").write_bytes(b"from an earlier run")  # replaced on resume
    paths = draw_run_pictures(run, tmp_path)
    assert [p.name for p in paths] == ["curves.png", "attention.png", "alignment.png"]
    for path in paths:
        image = imread(path)
        assert image[..., :3].std() > 0.05
    assert imread(paths[0]).shape[:2] == (400, 1000)


def test_draw_run_pictures_without_metrics_skips_curves(run, tmp_path):
    assert [p.name for p in draw_run_pictures(run, tmp_path)] == ["attention.png", "alignment.png"]
