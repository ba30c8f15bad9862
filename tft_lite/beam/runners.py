"""Runners tft_lite refuses: ones known to lose elements silently on its pipelines."""
from __future__ import annotations

# (module, class) of runners whose known bugs would make tft_lite's outputs silently wrong,
# with the runner to use instead.
_BROKEN = {
    ("apache_beam.runners.dask.dask_runner", "DaskRunner"): (
        "Beam's DaskRunner drops what DoFns emit from finish_bundle (tft_lite's per-bundle "
        "analyzer accumulators and shard writers) and duplicates outputs across partitions, "
        "which would give wrong statistics or empty shards; use "
        "--runner=tft_lite.beam.dask_runner.DaskRunner (Beam's runner with those bugs "
        "fixed, docs/runners.md)"),
}


class UnsupportedRunnerError(ValueError):
    """The pipeline's runner is known to lose or duplicate elements of tft_lite's steps."""


def check_runner(pipeline) -> None:
    """Raises UnsupportedRunnerError when `pipeline` runs on a runner listed in _BROKEN.

    The exact class is checked (subclasses such as tft_lite's fixed DaskRunner pass), by
    name, so the check imports nothing.
    """
    runner = type(getattr(pipeline, "runner", None))
    reason = _BROKEN.get((runner.__module__, runner.__name__))
    if reason is not None:
        raise UnsupportedRunnerError(reason)
