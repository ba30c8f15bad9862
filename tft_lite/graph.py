"""TransformGraph lives in tft_lite.serving.graph so serving never imports the tracer."""
from tft_lite.serving.graph import TransformGraph

__all__ = ["TransformGraph"]
