"""Pure, mergeable analyzer accumulators (TFT's analyzers without TensorFlow or Beam).

Every analyzer is a `Combiner` (see `base.py`): create_accumulator / add_input /
merge_accumulators / extract_output / compact, with plain picklable accumulators and outputs
that are bit-identical whatever the batch split and merge order. Only numpy and pyarrow are
imported.

* `moments`: tft.min / max / sum / size / mean / var.
* `vocabulary`: tft.vocabulary (frequency) and its text file format.
"""
from tft_lite.analyzers.base import Combiner
from tft_lite.analyzers.moments import (
    MaxCombiner,
    MeanAndVarCombiner,
    MeanCombiner,
    MinCombiner,
    MinMaxCombiner,
    SizeCombiner,
    SumCombiner,
    VarCombiner,
)
from tft_lite.analyzers.vocabulary import (
    VocabularyCombiner,
    read_vocabulary_file,
    vocabulary_file_bytes,
    write_vocabulary_file,
)

__all__ = [
    "Combiner",
    "MaxCombiner",
    "MeanAndVarCombiner",
    "MeanCombiner",
    "MinCombiner",
    "MinMaxCombiner",
    "SizeCombiner",
    "SumCombiner",
    "VarCombiner",
    "VocabularyCombiner",
    "read_vocabulary_file",
    "vocabulary_file_bytes",
    "write_vocabulary_file",
]
