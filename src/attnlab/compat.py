"""The seed API this project grew from, kept working.

``SelfAttention(emd_dim)`` and ``MultiAttention(emd_dim, num_heads)`` are the
names and argument spellings of the original projects; they are thin aliases
of :class:`attnlab.SelfAttention` and :class:`attnlab.MultiHeadAttention`.
``AttentionTrainer`` is the seed's trainer name for :mod:`attnlab.training`.
"""

from .attention.multihead import MultiHeadAttention
from .attention.simple import SelfAttention as _SelfAttention


class SelfAttention(_SelfAttention):
    """Single-head self-attention, seed spelling: ``SelfAttention(emd_dim)``.

    Example:
        >>> import torch
        >>> SelfAttention(8)(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, emd_dim: int) -> None:
        super().__init__(emd_dim)


class MultiAttention(MultiHeadAttention):
    """Multi-head self-attention, seed spelling: ``MultiAttention(emd_dim, num_heads)``.

    Example:
        >>> import torch
        >>> MultiAttention(8, 2)(torch.randn(2, 5, 8)).shape
        torch.Size([2, 5, 8])
    """

    def __init__(self, emd_dim: int, num_heads: int) -> None:
        super().__init__(emd_dim, num_heads)


class AttentionTrainer:
    """The seed's trainer: ``AttentionTrainer(model_type, embed_dim, ...)``, ``.train()``.

    It trains ``model_type`` (a ``--model`` name of ``attnlab train``; the seed's
    ``"self"`` and ``"multi"`` are accepted too) on the default task (``reverse``)
    through :func:`attnlab.training.train`, which is what ``attnlab train`` runs.

    Args:
        model_type: Mechanism name, e.g. ``"multihead"`` or ``"selfhead"``.
        embed_dim: Model width.
        num_heads: Heads (default 8, or 1 for single-head mechanisms).
        learning_rate: Peak learning rate.
        batch_size: Batch size.
        seq_length: Task sequence length.
        **options: Any other :class:`~attnlab.training.TrainConfig` field (``task``, ``out``...).
    """

    ALIASES = {"self": "selfhead", "self_attention": "selfhead", "multi": "multihead",
               "multi_head": "multihead", "multihead_attention": "multihead"}

    def __init__(self, model_type: str, embed_dim: int, num_heads: int | None = None,
                 learning_rate: float = 0.001, batch_size: int = 32, seq_length: int = 10,
                 **options: object) -> None:
        from .training import TrainConfig

        model = self.ALIASES.get(model_type, model_type)
        if num_heads is not None:  # None: TrainConfig's default, 8 (1 for a model without heads)
            options["num_heads"] = num_heads
        self.config = TrainConfig(model=model, embed_dim=embed_dim,
                                  learning_rate=learning_rate, batch_size=batch_size,
                                  seq_length=seq_length, **options)  # type: ignore[arg-type]
        self.run_dir: str | None = None

    def train(self, epochs: int, save_path: str | None = None) -> dict:
        """Train for ``epochs`` epochs; write the final weights to ``save_path`` if given."""
        from .training import train

        config = self.config.replace(epochs=epochs, save_path=save_path)
        summary = train(config)
        self.run_dir = summary["run_dir"]
        return summary

    def evaluate(self) -> dict[str, float]:
        """Held-out metrics of the trained model.

        Raises:
            ValueError: If :meth:`train` has not run yet.
        """
        from .training import evaluate

        if self.run_dir is None:
            raise ValueError("evaluate() needs a trained model: call train(epochs) first")
        return evaluate(self.run_dir)


__all__ = ["AttentionTrainer", "MultiAttention", "SelfAttention"]
