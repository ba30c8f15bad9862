"""tft_lite.data: tf.data's pipeline API over numpy and pyarrow, for reading training data.

    import tft_lite.data as tfd
    spec = tfd.transformed_feature_spec("output/")            # or your own feature spec
    ds = (tfd.Dataset.list_files("output/transformed-*.gz", seed=1)
          .interleave(lambda f: tfd.TFRecordDataset(f, "GZIP"), cycle_length=8)
          .shuffle(10_000, seed=1)
          .batch(1024)
          .map(tfd.parse_examples(spec))
          .prefetch(tfd.AUTOTUNE))
    for batch in ds.as_numpy_iterator(): ...                  # dict of numpy arrays
    torch_ds = ds.as_torch()                                  # for a DataLoader (tft_lite[torch])

Names and semantics are tf.data's (see docs/data.md for the differences). This layer imports
tft_lite.io, tft_lite.ir.schema and tft_lite.errors only; torch only inside as_torch().
"""
from tft_lite.data._chunks import ErrorStats
from tft_lite.data.csv_text import CsvDecodeError, decode_csv
from tft_lite.data.dataset import AUTOTUNE, Dataset
from tft_lite.data.parsing import (from_transform_output, parse_examples,
                                   transformed_feature_spec)
from tft_lite.data.sources import TextLineDataset, TFRecordDataset
from tft_lite.ir.schema import FixedLenFeature, VarLenFeature

__all__ = [
    "AUTOTUNE", "CsvDecodeError", "Dataset", "ErrorStats", "FixedLenFeature", "TFRecordDataset",
    "TextLineDataset", "VarLenFeature", "decode_csv", "from_transform_output",
    "parse_examples", "transformed_feature_spec",
]
