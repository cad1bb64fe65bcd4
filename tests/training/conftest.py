import pytest

from attnlab.training import TrainConfig


@pytest.fixture
def tiny(tmp_path):
    """A factory of tiny, fast TrainConfigs writing under tmp_path."""

    def make(**kw):
        base = {"embed_dim": 16, "num_heads": 2, "num_layers": 1, "batch_size": 8,
                "epochs": 2, "steps_per_epoch": 5, "eval_every": 1, "eval_batches": 1,
                "warmup_steps": 2, "seq_length": 6, "out": str(tmp_path / "run")}
        return TrainConfig(**{**base, **kw})

    return make
