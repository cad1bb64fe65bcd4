"""Fixtures for the command-line tests: a trainer that records its calls instead of training."""

import pytest

from attnlab.training import run as trainer_module


class FakeTrainer:
    """Stands in for ``attnlab.training.run``'s train/evaluate/load_run/answer; records calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.error: BaseException | None = None
        self.reply = "answer"
        self.metrics = {"val_loss": 0.125, "seq_acc": 0.5}

    def _record(self, name, *args, **kwargs):
        self.calls.append((name, args, kwargs))
        if self.error is not None:
            raise self.error

    def train(self, config, *, resume=None, force=False):
        self._record("train", config, resume=resume)
        return {"run_dir": config.run_dir(), "metrics": {}}

    def evaluate(self, run_dir, *, device="auto"):
        self._record("evaluate", run_dir, device=device)
        return dict(self.metrics)

    def load_run(self, run_dir, device="auto"):
        self._record("load_run", run_dir, device=device)
        return None, None, None

    def answer(self, model, task, prompt, max_new_tokens=None, temperature=0.0, on_crop=None):
        self._record("answer", prompt, max_new_tokens=max_new_tokens, temperature=temperature)
        return f"{self.reply}:{prompt}"

    @property
    def configs(self):
        return [args[0] for name, args, _ in self.calls if name == "train"]


@pytest.fixture
def fake_trainer(monkeypatch):
    fake = FakeTrainer()
    for name in ("train", "evaluate", "load_run", "answer"):
        monkeypatch.setattr(trainer_module, name, getattr(fake, name))
    return fake
