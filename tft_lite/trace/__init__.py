"""Tracing: run a preprocessing_fn once on symbolic tensors and record an ir.Graph.

    graph = trace(preprocessing_fn, raw_feature_spec)

`tensor.py` holds the Tensor and the tracer, `infer.py` the type rules, and `api.py`,
`analyzers.py`, `mappers.py` the user-facing functions under TensorFlow / TFT names. The
serving layer never imports this package.
"""
from tft_lite.ir.schema import normalize_schema
from tft_lite.ir.verify import verify
from tft_lite.trace import tensor as _tensor
from tft_lite.trace.tensor import Tensor


def trace(preprocessing_fn, raw_feature_spec):
    """Traces `preprocessing_fn` against `raw_feature_spec`; returns a verified ir.Graph.

    Raises:
      SchemaError: bad spec or unknown feature. GraphError: bad op, dtype or shape, with the
        line of the user's code.
    """
    graph = _tensor.trace(preprocessing_fn, normalize_schema(raw_feature_spec))
    verify(graph, allow_analyzers=True)
    return graph


__all__ = ["Tensor", "trace"]
