"""Serving: load a saved transform artifact and apply it with numpy.

    graph = tft_lite.serving.load("output/transform")
    outputs = graph.transform(record_batch)          # dict of numpy arrays
    one = graph.transform_instance({"x": 1.5, ...})

This package imports only numpy, pyarrow, protobuf and tft_lite's ir, io and kernels layers:
never Apache Beam, never the tracer (a test checks it in a fresh interpreter).
"""
from tft_lite.serving.artifact import load, save
from tft_lite.serving.graph import TransformGraph

__all__ = ["TransformGraph", "load", "save"]
