"""tft_lite: TensorFlow Transform without TensorFlow.

Layers, bottom up (a lower layer never imports a higher one):
  ir/         feature specs, graph nodes and ops, serialization (numpy + protobuf only)
  io/         TFRecord framing and the tf.train.Example codec
  analyzers/  pure mergeable accumulators (numpy/pyarrow only)
  beam/       Apache Beam PTransforms (the only place apache_beam is imported)
  serving/    loads a transform graph and applies it with numpy
"""
__version__ = "0.1.0"
