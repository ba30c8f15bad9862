"""RecordBatchCoder: Arrow IPC round trips, deterministic bytes, registered for RecordBatch."""
import apache_beam as beam
import numpy as np
import pyarrow as pa

from tft_lite.beam.coders import RecordBatchCoder


def test_round_trip_of_every_column_kind():
    batch = pa.record_batch({
        "f": pa.array([1.5, float("nan"), None], pa.float32()),
        "i": pa.array([1, None, -(2**63)], pa.int64()),
        "s": pa.array([b"\x00\xff", None, b""], pa.binary()),
        "l": pa.array([[1], None, []], pa.list_(pa.int64())),
        "v": pa.FixedSizeListArray.from_arrays(pa.array(np.arange(6, dtype=np.float32)), 2),
    }).replace_schema_metadata({b"k": b"v"})
    coder = RecordBatchCoder()
    for part in (batch, batch.slice(1, 2), batch.slice(0, 0)):
        decoded = coder.decode(coder.encode(part))
        assert decoded.schema == part.schema and decoded.schema.metadata == {b"k": b"v"}
        assert decoded.drop_columns(["f"]).equals(part.drop_columns(["f"]))
        np.testing.assert_array_equal(  # NaN != NaN, so compare the float column's bits
            decoded.column("f").fill_null(0).to_numpy().view(np.uint32),
            part.column("f").fill_null(0).to_numpy().view(np.uint32))
    assert coder.encode(batch) == coder.encode(pa.record_batch(batch.columns,
                                                               schema=batch.schema))


def test_registered_for_record_batches():
    assert isinstance(beam.coders.registry.get_coder(pa.RecordBatch), RecordBatchCoder)
