"""Wire formats: TFRecord framing and the tf.train.Example / SequenceExample codecs.

Everything here reads and writes bytes that TensorFlow reads and writes unchanged. This layer
imports numpy, pyarrow, protobuf and google-crc32c only (never Beam, never the tracer), so
serving code can use it.
"""
from tft_lite.errors import CorruptRecordError, ExampleDecodeError, ExampleEncodeError
from tft_lite.io.example import codec_backend, decode_examples, encode_examples
from tft_lite.io.schema_pbtxt import schema_from_pbtxt, schema_to_pbtxt
from tft_lite.io.sequence import decode_sequence_examples, encode_sequence_examples
from tft_lite.io.tfrecord import (ReadStats, TFRecordWriter, masked_crc32c,
                                  read_tfrecord_batches, read_tfrecords, write_tfrecords)
from tft_lite.ir.schema import FixedLenFeature, FixedLenSequenceFeature, VarLenFeature

__all__ = [
    "CorruptRecordError", "ExampleDecodeError", "ExampleEncodeError", "FixedLenFeature",
    "FixedLenSequenceFeature", "ReadStats", "TFRecordWriter", "VarLenFeature", "codec_backend",
    "decode_examples", "decode_sequence_examples", "encode_examples", "encode_sequence_examples",
    "masked_crc32c", "read_tfrecord_batches", "read_tfrecords", "schema_from_pbtxt",
    "schema_to_pbtxt", "write_tfrecords",
]
