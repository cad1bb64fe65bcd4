"""Training tasks: deterministic, seeded example generators with held-out splits.

Importing this package registers every task in ``attnlab.registry.TASKS``; build one
with ``TASKS.get(name)(seq_length)`` (``text`` also takes ``data=``). The interface
the trainer relies on is ``attnlab.tasks.base.Task``; its module docstring gives the
batch layout.
"""

from attnlab.registry import TASKS
from attnlab.tasks.base import BOS, EOS, PAD, Batch, Task, Vocab
from attnlab.tasks.dates import DatesTask
from attnlab.tasks.recall import RecallTask
from attnlab.tasks.sequences import CopyTask, ReverseTask, Seq2SeqTask, SortTask
from attnlab.tasks.text import TextTask

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "Batch",
    "Task",
    "Vocab",
    "Seq2SeqTask",
    "CopyTask",
    "ReverseTask",
    "SortTask",
    "RecallTask",
    "DatesTask",
    "TextTask",
]

TASKS.register("copy", CopyTask, help="copy a random hex string (seq2seq)")
TASKS.register("reverse", ReverseTask, help="reverse a random hex string (seq2seq)")
TASKS.register("sort", SortTask, help="sort the characters of a random hex string (seq2seq)")
TASKS.register("recall", RecallTask, help="associative recall: key-value pairs, then a key")
TASKS.register("dates", DatesTask, help="human-written English dates to ISO 8601")
TASKS.register("text", TextTask, help="character-level language model (stdlib or --data)")
