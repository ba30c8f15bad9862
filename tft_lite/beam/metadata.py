"""DatasetMetadata: the schema that travels next to a PCollection, as in TFT."""
from __future__ import annotations

from tft_lite.ir.schema import normalize_schema


class DatasetMetadata:
    """A feature spec wrapped the way TFT's `dataset_metadata.DatasetMetadata` is passed.

    Accepts a dict feature spec; `from_feature_spec` is TFT's spelling. Anywhere a metadata is
    expected, a plain feature-spec dict works too.
    """

    def __init__(self, feature_spec):
        if isinstance(feature_spec, DatasetMetadata):
            feature_spec = feature_spec.feature_spec
        self.feature_spec = normalize_schema(dict(feature_spec))

    @classmethod
    def from_feature_spec(cls, feature_spec, domains=None):
        del domains
        return cls(feature_spec)

    @property
    def schema(self):
        return self.feature_spec

    def __eq__(self, other):
        return isinstance(other, DatasetMetadata) and self.feature_spec == other.feature_spec

    def __repr__(self):
        return f"DatasetMetadata({sorted(self.feature_spec)})"


def feature_spec_of(metadata) -> dict:
    """The normalized feature spec of a DatasetMetadata or a feature-spec dict."""
    if isinstance(metadata, DatasetMetadata):
        return metadata.feature_spec
    if isinstance(metadata, dict):
        return normalize_schema(metadata)
    spec = getattr(metadata, "feature_spec", None)
    if spec is None:
        raise TypeError(f"expected a DatasetMetadata or a feature spec dict, got "
                        f"{type(metadata).__name__}")
    return normalize_schema(dict(spec))


def pcollections_in(value) -> list:
    """The PCollections inside a nested tuple/list/dict (metadata and other leaves skipped)."""
    import apache_beam as beam
    if isinstance(value, beam.pvalue.PValue):
        return [value]
    if isinstance(value, (tuple, list)):
        return [p for item in value for p in pcollections_in(item)]
    if isinstance(value, dict) and not isinstance(value, DatasetMetadata):
        return [p for item in value.values() for p in pcollections_in(item)]
    return []


class TupleInputMixin:
    """For PTransforms taking (data, metadata)-style tuples, like TFT's: only the PCollections
    are inputs; metadata (a DatasetMetadata or a feature-spec dict) rides along unchanged
    instead of being turned into a Create by Beam."""

    def _extract_input_pvalues(self, pvalueish):
        return pvalueish, pcollections_in(pvalueish)
