"""`Context`: pipeline-wide settings, entered with `with tft_beam.Context(temp_dir=...)`.

Mirrors tensorflow_transform.beam.Context: a thread-local stack of settings that the
PTransforms read when the pipeline is built.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

_STATE = threading.local()


@dataclass(frozen=True)
class _Settings:
    temp_dir: str | None = None
    desired_batch_size: int | None = None
    vocabulary_shards: int = 16


class Context:
    """Settings for the analyze and transform passes built inside the `with` block.

    Args:
      temp_dir: where temporary outputs go (TFT requires it for some runners; kept for
        API compatibility and used by the sinks' temp files when set).
      desired_batch_size: rows per RecordBatch when per-row dicts are batched.
      vocabulary_shards: how many hash shards distributed vocabulary counting uses.
    """

    def __init__(self, temp_dir=None, desired_batch_size=None, vocabulary_shards=16,
                 **unused_tft_kwargs):
        self._settings = _Settings(temp_dir, desired_batch_size, vocabulary_shards)

    def __enter__(self):
        _stack().append(self._settings)
        return self

    def __exit__(self, *exc):
        _stack().pop()
        return False

    @staticmethod
    def get() -> _Settings:
        """The innermost active settings (defaults outside any `with Context`)."""
        stack = _stack()
        return stack[-1] if stack else _Settings()


def _stack() -> list:
    if not hasattr(_STATE, "stack"):
        _STATE.stack = []
    return _STATE.stack
