"""Tests for tft_lite.analyzers.vocabulary (VocabularyCombiner and the text file format).

Golden file bytes: produced once with tensorflow-transform 1.21 / TensorFlow 2.21
(/work/tfvenv) by running `tft_beam.AnalyzeDataset` (DirectRunner) with a preprocessing_fn
calling `tft.vocabulary(x, vocab_filename="v", **config)` on a VarLenFeature (tf.string or
tf.int64) holding one token per instance, then reading the bytes of
`TFTransformOutput.vocabulary_file_by_name("v")` (the only file in its directory). They are
pasted as literals; these tests never import TensorFlow.
"""
import os
import pickle
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tft_lite.analyzers import vocabulary as vocab_mod
from tft_lite.analyzers.vocabulary import (
    DUMMY_INT_TOKEN,
    DUMMY_STRING_TOKEN,
    VocabularyCombiner,
    maybe_format_vocabulary_input,
    read_vocabulary_file,
    vocabulary_file_bytes,
    write_vocabulary_file,
)

TOKENS = [
    b"b", b"a", b"c", b"a", b"c", b"b", b"a", b"", b"", b"", b"", b"x\ny", b"x\ny", b"x\ny",
    b"x\ny", b"r\r", b"r\r", b"r\r", b"r\r", b"\n", b"sp ace", b"sp ace", b"\xff\xfe",
    b"\xff\xfe", b"caf\xc3\xa9", b"\t", b"\t", b"aa", b"B", b"b ",
]
UTF8_TOKENS = [t for t in TOKENS if t != b"\xff\xfe"]
INTS = [3, 3, 3, 3, 3, 2, 2, 2, 111, 111, 111, -5, -5, 10, 9, 0, -(2**63), 2**63 - 1]
SMALL = [b"a", b"a", b"b", b"c", b"c", b"c"]
D = DUMMY_STRING_TOKEN

# name, tokens, input_dtype, config, exact bytes of the file TFT 1.21 wrote.
TFT_GOLDEN = [
    ("basic", TOKENS, "string", {},
     b"a\n\xff\xfe\nsp ace\nc\nb\n\t\ncaf\xc3\xa9\nb \naa\nB\n"),
    ("basic_freq_utf8", UTF8_TOKENS, "string", {"store_frequency": True},
     b"3 a\n2 sp ace\n2 c\n2 b\n2 \t\n1 caf\xc3\xa9\n1 b \n1 aa\n1 B\n"),
    ("topk3", TOKENS, "string", {"top_k": 3}, b"a\n\xff\xfe\nsp ace\n"),
    ("topk3_freq", UTF8_TOKENS, "string", {"top_k": 3, "store_frequency": True},
     b"3 a\n2 sp ace\n2 c\n"),
    ("thresh2", TOKENS, "string", {"frequency_threshold": 2},
     b"a\n\xff\xfe\nsp ace\nc\nb\n\t\n"),
    ("thresh2_topk2", TOKENS, "string", {"frequency_threshold": 2, "top_k": 2},
     b"a\n\xff\xfe\n"),
    ("thresh_frac", TOKENS, "string", {"frequency_threshold": 1.5},
     b"a\n\xff\xfe\nsp ace\nc\nb\n\t\n"),
    ("ints", INTS, "int64", {},
     b"3\n2\n111\n-5\n9223372036854775807\n9\n10\n0\n-9223372036854775808\n"),
    ("ints_freq", INTS, "int64", {"store_frequency": True},
     b"5 3\n3 2\n3 111\n2 -5\n1 9223372036854775807\n1 9\n1 10\n1 0\n1 -9223372036854775808\n"),
    ("ints_topk", INTS, "int64", {"top_k": 4}, b"3\n2\n111\n-5\n"),
    ("empty_str", [], "string", {}, D + b"\n"),
    ("empty_str_freq", [], "string", {"store_frequency": True}, b"1 " + D + b"\n"),
    ("only_filtered", [b"", b"a\nb"], "string", {"store_frequency": True}, b"1 " + D + b"\n"),
    ("empty_int", [], "int64", {}, b"-1\n"),
    ("empty_int_freq", [], "int64", {"store_frequency": True}, b"1 -1\n"),
    ("empty_topk", [], "string", {"top_k": 5}, D + b"\n"),
    ("thresh_all_out", [b"a", b"b"], "string", {"frequency_threshold": 5}, D + b"\n"),
    ("reserved", SMALL, "string", {"reserved_tokens": ["c", "zz"]}, b"c\nzz\na\nb\n"),
    ("reserved_freq", SMALL, "string", {"reserved_tokens": ["c", "zz"], "store_frequency": True},
     b"-1 c\n-1 zz\n2 a\n1 b\n"),
    ("reserved_topk", SMALL, "string", {"reserved_tokens": ["c", "zz"], "top_k": 2},
     b"c\nzz\na\n"),
    ("reserved_empty", [], "string", {"reserved_tokens": ["c", "zz"]}, b"c\nzz\n"),
    ("reserved_empty_topk", [], "string", {"reserved_tokens": ["c", "zz"], "top_k": 3},
     b"c\nzz\n" + D + b"\n"),
    ("reserved_thresh_topk_freq", [b"a", b"a", b"b", b"c", b"c", b"c", b"d", b"d"], "string",
     {"reserved_tokens": ["d"], "top_k": 2, "frequency_threshold": 2, "store_frequency": True},
     b"-1 d\n3 c\n"),
    ("thresh_le1", [b"a", b"b", b"b"], "string", {"frequency_threshold": 1}, b"b\na\n"),
    ("thresh0", [b"a", b"b", b"b"], "string", {"frequency_threshold": 0}, b"b\na\n"),
]


def _array(tokens, input_dtype):
    if input_dtype == "string":
        arr = np.empty(len(tokens), dtype=object)
        arr[:] = tokens
        return arr
    return np.array(tokens, dtype=input_dtype)


def _extract(comb, tokens, input_dtype, batch_size=None):
    acc = comb.create_accumulator()
    arr = _array(tokens, input_dtype)
    if batch_size is None:
        if len(arr):
            acc = comb.add_input(acc, (arr,))
    else:
        for i in range(0, len(arr), batch_size):
            acc = comb.add_input(acc, (arr[i:i + batch_size],))
    return comb.extract_output(acc)


@pytest.mark.parametrize("case", TFT_GOLDEN, ids=[c[0] for c in TFT_GOLDEN])
@pytest.mark.parametrize("batch_size", [None, 1, 7])
def test_tft_golden_file_bytes(case, batch_size, tmp_path):
    name, tokens, input_dtype, config, golden = case
    comb = VocabularyCombiner(input_dtype=input_dtype, **config)
    toks, counts, unpruned = _extract(comb, tokens, input_dtype, batch_size)
    freq = config.get("store_frequency", False)
    assert vocabulary_file_bytes(toks, counts, store_frequency=freq) == golden
    path = tmp_path / "v"
    write_vocabulary_file(path, toks, counts, store_frequency=freq)
    assert path.read_bytes() == golden
    assert os.listdir(tmp_path) == ["v"]
    read_tokens, read_counts = read_vocabulary_file(path, store_frequency=freq)
    assert read_tokens.tolist() == toks.tolist()
    if freq:
        assert read_counts.tolist() == counts.tolist()
    assert toks.dtype == object and counts.dtype == np.int64 and unpruned.dtype == np.int64



@pytest.mark.parametrize("case", TFT_GOLDEN, ids=[c[0] for c in TFT_GOLDEN])
def test_arrow_output_writes_the_golden_bytes(case):
    """extract_arrow_output (what the Beam analysis binds) = extract_output, as file bytes."""
    name, tokens, input_dtype, config, golden = case
    comb = VocabularyCombiner(input_dtype=input_dtype, **config)
    arr = _array(tokens, input_dtype)
    acc = comb.add_input(comb.create_accumulator(), (arr,)) if len(arr) else \
        comb.create_accumulator()
    toks, counts, unpruned = comb.extract_arrow_output(acc)
    expected = comb.extract_output(acc)
    freq = config.get("store_frequency", False)
    assert vocabulary_file_bytes(toks, counts, store_frequency=freq) == golden
    assert list(toks.tolist()) == expected[0].tolist()
    assert counts.tolist() == expected[1].tolist() and unpruned == expected[2]


@pytest.mark.parametrize("config", [{"reserved_tokens": ["zz"]}, {"top_k": 2}, {}])
def test_arrow_output_of_empty_and_reserved_equals_extract_output(config):
    comb = VocabularyCombiner(**config)
    for acc in (comb.create_accumulator(),
                comb.add_input(comb.create_accumulator(), (pa.array([b"a", b"b", b"a"]),))):
        got, expected = comb.extract_arrow_output(acc), comb.extract_output(acc)
        assert list(got[0].tolist()) == expected[0].tolist()
        assert got[1].tolist() == expected[1].tolist() and got[2] == expected[2]

def test_unpruned_size_and_counts():
    comb = VocabularyCombiner(top_k=2, reserved_tokens=["zz"])
    toks, counts, unpruned = _extract(comb, TOKENS, "string")
    # 10 distinct tokens survive the newline/empty filter; TFT adds the reserved tokens.
    assert int(unpruned) == 10 + 1
    assert toks.tolist() == [b"zz", b"a", b"\xff\xfe"] and counts.tolist() == [-1, 3, 2]
    _, _, unpruned_empty = _extract(VocabularyCombiner(), [], "string")
    assert int(unpruned_empty) == 1  # TFT: max(count, 1)


def test_non_utf8_with_store_frequency_writes_raw_bytes():
    # TFT 1.21 raises UnicodeDecodeError here (it formats "{count} {token.decode()}");
    # tft_lite writes the raw bytes, identical to TFT for every token TFT can write.
    comb = VocabularyCombiner(store_frequency=True)
    toks, counts, _ = _extract(comb, TOKENS, "string")
    data = vocabulary_file_bytes(toks, counts, store_frequency=True)
    assert data.startswith(b"3 a\n2 \xff\xfe\n2 sp ace\n")


def test_tfrecord_format_does_not_filter():
    comb = VocabularyCombiner(file_format="tfrecord_gzip")
    toks, counts, _ = _extract(comb, [b"", b"", b"a\nb", b"x"], "string")
    assert toks.tolist() == [b"", b"x", b"a\nb"] and counts.tolist() == [2, 1, 1]
    with pytest.raises(ValueError):
        vocabulary_file_bytes(toks)  # cannot go to a text file


# ----------------------------------------------------------------------------- reference


def _reference(tokens, integer, top_k, threshold, reserved, file_format):
    toks = [str(t).encode() for t in tokens] if integer else list(tokens)
    if not integer and file_format == "text":
        toks = [t for t in toks if t and b"\n" not in t and b"\r" not in t]
    items = [(c, t) for t, c in Counter(toks).items()]
    unpruned = len(items)
    if threshold is not None and threshold > 0:
        items = [(c, t) for c, t in items if c >= threshold]
    items.sort(reverse=True)
    dummy = DUMMY_INT_TOKEN if integer else DUMMY_STRING_TOKEN
    if top_k is not None:
        items = items[:top_k] or [(1, dummy)]
    if reserved:
        rset = set(reserved)
        items = [(-1, r) for r in reserved] + [(c, t) for c, t in items if t not in rset]
    items = items or [(1, dummy)]
    return [t for _, t in items], [c for c, _ in items], max(unpruned, 1) + len(reserved or [])


def _run_split(comb, arr, cuts, rnd):
    bounds = [0] + sorted(cuts) + [len(arr)]
    accs, acc = [], None
    for a, b in zip(bounds[:-1], bounds[1:]):
        if acc is None or rnd.random() < 0.5:
            if acc is not None:
                accs.append(acc)
            acc = comb.create_accumulator()
        acc = comb.add_input(acc, (arr[a:b],))
    if acc is not None:
        accs.append(acc)
    accs = [pickle.loads(pickle.dumps(a)) for a in accs]
    if rnd.random() < 0.3:
        accs.append(comb.create_accumulator())
    while len(accs) > 1:
        rnd.shuffle(accs)
        k = rnd.randint(2, len(accs))
        merged = comb.merge_accumulators(accs[:k])
        if rnd.random() < 0.5:
            merged = comb.compact(merged)
        accs = [merged] + accs[k:]
    return comb.extract_output(accs[0] if accs else comb.create_accumulator())


_token = st.one_of(
    st.sampled_from([b"", b"a", b"b", b"ab", b"a b", b"\n", b"x\r", b"\xff", b"\xff\x00", b"B",
                     b"caf\xc3\xa9", b" ", b"\t"]),
    st.binary(max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_token, max_size=60),
    st.one_of(st.none(), st.integers(1, 8)),
    st.one_of(st.none(), st.sampled_from([0, 1, 2, 2.5, 3])),
    st.one_of(st.none(), st.lists(st.sampled_from([b"a", b"zz", b"\xff"]), unique=True,
                                  max_size=2)),
    st.sampled_from(["text", "tfrecord_gzip"]),
    st.lists(st.integers(0, 60), max_size=6),
    st.randoms(use_true_random=False),
)
def test_split_merge_invariance_and_reference(tokens, top_k, threshold, reserved, fmt, cuts, rnd):
    comb = VocabularyCombiner(top_k=top_k, frequency_threshold=threshold,
                              reserved_tokens=reserved, file_format=fmt)
    arr = _array(tokens, "string")
    cuts = [min(c, len(arr)) for c in cuts]
    split = _run_split(comb, arr, cuts, rnd)
    exp_tokens, exp_counts, exp_unpruned = _reference(tokens, False, top_k, threshold,
                                                      reserved, fmt)
    assert split[0].tolist() == exp_tokens
    assert split[1].tolist() == exp_counts
    assert int(split[2]) == exp_unpruned


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.integers(-3, 12), st.integers(-(2**63), 2**63 - 1)), max_size=50),
    st.one_of(st.none(), st.integers(1, 5)),
    st.lists(st.integers(0, 50), max_size=4),
    st.randoms(use_true_random=False),
)
def test_integer_tokens_split_and_reference(values, top_k, cuts, rnd):
    comb = VocabularyCombiner(top_k=top_k, input_dtype="int64")
    arr = np.array(values, dtype=np.int64)
    split = _run_split(comb, arr, [min(c, len(arr)) for c in cuts], rnd)
    exp_tokens, exp_counts, _ = _reference(values, True, top_k, None, None, "text")
    assert split[0].tolist() == exp_tokens and split[1].tolist() == exp_counts


# ----------------------------------------------------------------------------- accumulator


def _entries(acc):
    return sum(len(run[2]) for runs in acc.values() for run in runs)


def test_accumulator_bounded_by_distinct_tokens():
    comb = VocabularyCombiner()
    acc = comb.create_accumulator()
    batch = np.array([b"t%d" % i for i in range(10)] * 50, dtype=object)
    for _ in range(1000):
        acc = comb.add_input(acc, (batch,))
        assert all(len(runs) <= vocab_mod._MAX_RUNS + 1 for runs in acc.values())
        assert _entries(acc) <= 10 * (vocab_mod._MAX_RUNS + 1)
    toks, counts, _ = comb.extract_output(acc)
    assert len(toks) == 10 and set(counts.tolist()) == {50_000}

    rng = np.random.default_rng(0)
    acc = comb.create_accumulator()
    distinct = set()
    for _ in range(60):
        ids = rng.integers(0, 150_000, size=5_000)
        distinct.update(ids.tolist())
        acc = comb.add_input(acc, (np.array([b"%d" % i for i in ids], dtype=object),))
        assert _entries(acc) <= 2 * len(distinct) + vocab_mod._FOLD_MIN_PENDING
    merged = comb.merge_accumulators([acc, comb.compact(acc)])
    assert _entries(merged) <= 2 * len(distinct) + vocab_mod._FOLD_MIN_PENDING
    assert _entries(comb.compact(merged)) == len(distinct)


def test_compact_is_canonical_and_accumulators_are_plain_data():
    comb = VocabularyCombiner()
    a = comb.add_input(comb.create_accumulator(), (np.array([b"x", b"y", b"x"], dtype=object),))
    a = comb.add_input(a, (np.array([b"z"], dtype=object),))
    b = comb.add_input(comb.create_accumulator(), (np.array([b"z", b"x"], dtype=object),))
    b = comb.add_input(b, (np.array([b"y", b"x"], dtype=object),))
    ca, cb = comb.compact(a), comb.compact(b)
    assert list(ca) == list(cb) == [-1] and len(ca[-1]) == len(cb[-1]) == 1
    for xa, xb in zip(ca[-1][0], cb[-1][0]):
        assert isinstance(xa, np.ndarray) and xa.tobytes() == xb.tobytes()
    assert comb.compact(comb.create_accumulator()) == {}
    assert pickle.loads(pickle.dumps(ca))[-1][0][2].tolist() == ca[-1][0][2].tolist()


def test_merge_does_not_mutate_inputs():
    comb = VocabularyCombiner()
    a = comb.add_input(comb.create_accumulator(), (np.array([b"x"], dtype=object),))
    b = comb.add_input(comb.create_accumulator(), (np.array([b"y", b"y"], dtype=object),))
    before = pickle.dumps(b)
    comb.merge_accumulators([a, b])
    comb.merge_accumulators([a, b])
    assert pickle.dumps(b) == before
    assert comb.extract_output(comb.merge_accumulators([a, b]))[1].tolist() == [2, 1]


def test_input_kinds():
    expected = _extract(VocabularyCombiner(), [b"a", b"b", b"b", b"\xc3\xa9"], "string")[0].tolist()
    comb = VocabularyCombiner()
    for values in (
        np.array(["a", "b", "b", "é"]),
        pa.array(["a", "b", "b", "é"]),
        pa.array([b"a", b"b", b"b", b"\xc3\xa9"], pa.binary()),
        pa.array(["a", "b", "b", "é"]).dictionary_encode(),
        pa.chunked_array([["a", "b"], ["b", "é"]]),
        np.array([[b"a", b"b"], [b"b", b"\xc3\xa9"]], dtype=object),
    ):
        got = comb.extract_output(comb.add_input(comb.create_accumulator(), (values,)))[0]
        assert got.tolist() == expected
    ints = VocabularyCombiner(input_dtype="int32")
    acc = ints.add_input(ints.create_accumulator(), (pa.array([7, -1, 7], pa.int32()),))
    got = ints.extract_output(acc)
    assert got[0].tolist() == [b"7", b"-1"] and got[1].tolist() == [2, 1]


def test_validation_errors():
    for bad in (dict(top_k=0), dict(top_k=-1), dict(top_k=1.5), dict(frequency_threshold=-1),
                dict(file_format="csv"), dict(input_dtype="float32"), dict(reserved_tokens=[1.5])):
        with pytest.raises((ValueError, TypeError)):
            VocabularyCombiner(**bad)
    comb = VocabularyCombiner()
    with pytest.raises(TypeError):
        comb.add_input(comb.create_accumulator(), (np.array([1, 2]),))  # ints, dtype string
    with pytest.raises(TypeError):
        VocabularyCombiner(input_dtype="int64").add_input([], (np.array([b"a"], dtype=object),))
    with pytest.raises(TypeError):
        comb.add_input(comb.create_accumulator(), (np.array([1.5]),))
    with pytest.raises(ValueError):
        comb.add_input(comb.create_accumulator(), (pa.array(["a", None]),))


def test_config_stored_unchanged():
    reserved = ["b", "a"]
    comb = VocabularyCombiner(top_k=3, frequency_threshold=2, store_frequency=True,
                              reserved_tokens=reserved)
    cfg = comb.get_config()
    assert cfg["reserved_tokens"] is reserved and cfg["top_k"] == 3
    assert cfg["frequency_threshold"] == 2 and cfg["file_format"] == "text"
    assert comb == VocabularyCombiner(top_k=3, frequency_threshold=2, store_frequency=True,
                                      reserved_tokens=["b", "a"])


# ----------------------------------------------------------------------------- files


def test_write_is_atomic_and_replaces(tmp_path):
    path = tmp_path / "vocab"
    write_vocabulary_file(path, [b"old"])
    assert path.read_bytes() == b"old\n"
    write_vocabulary_file(str(path), [b"new one", b"\xff"], [4, 2], store_frequency=True)
    assert path.read_bytes() == b"4 new one\n2 \xff\n"
    with pytest.raises(ValueError):
        write_vocabulary_file(path, [b"fine", b"bad\ntoken"])
    with pytest.raises(ValueError):
        write_vocabulary_file(path, [b"bad\r"])
    assert path.read_bytes() == b"4 new one\n2 \xff\n"  # untouched
    assert os.listdir(tmp_path) == ["vocab"]  # no temp files left behind


def test_write_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "vocab"
    write_vocabulary_file(path, [b"keep"])

    def boom(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(vocab_mod.os, "replace", boom)
    with pytest.raises(OSError):
        write_vocabulary_file(path, [b"new"])
    assert path.read_bytes() == b"keep\n"
    assert os.listdir(tmp_path) == ["vocab"]


def test_read_like_tf(tmp_path):
    path = tmp_path / "v"
    # TF's text line reader drops a "\r" before "\n" and reads a last line without "\n".
    path.write_bytes(b"a\r\nb\n\nc")
    toks, counts = read_vocabulary_file(path)
    assert toks.tolist() == [b"a", b"b", b"", b"c"] and counts is None
    path.write_bytes(b"3 a b\n-1 x\n1  lead\n")
    toks, counts = read_vocabulary_file(path, store_frequency=True)
    assert toks.tolist() == [b"a b", b"x", b" lead"] and counts.tolist() == [3, -1, 1]
    path.write_bytes(b"nospace\n")
    with pytest.raises(ValueError):
        read_vocabulary_file(path, store_frequency=True)
    path.write_bytes(b"")
    toks, _ = read_vocabulary_file(path)
    assert toks.tolist() == []


def test_file_bytes_requires_counts_for_frequency():
    with pytest.raises(ValueError):
        vocabulary_file_bytes([b"a"], store_frequency=True)
    with pytest.raises(ValueError):
        vocabulary_file_bytes([b"a", b"b"], [1], store_frequency=True)
    assert vocabulary_file_bytes(["é", 5]) == "é\n5\n".encode()


def test_maybe_format_vocabulary_input():
    out = maybe_format_vocabulary_input(np.array([b"a b", b"\xff  x", b"none"], dtype=object))
    assert out.to_pylist() == [b"a__SPACE__b", b"\xff__SPACE____SPACE__x", b"none"]
    assert maybe_format_vocabulary_input(np.array([1, -2])).to_pylist() == [b"1", b"-2"]


FILE_BYTES_CASES = [
    ("bytes", np.array([b"a", b"\xff\xfe", b"sp ace", b"", b"-5"], dtype=object),
     [3, 2, 2, 1, -1]),
    ("str", ["é", "b", "c d"], np.array([7, 0, 12], np.int64)),
    ("mixed", [b"x", "y"], [1, 2]),
    ("empty", [], []),
    ("float_counts", [b"a", b"b"], [2.0, 1.5]),
    ("int_tokens", [b"a", 5], [1, 1]),
]


@pytest.mark.parametrize("store_frequency", [False, True])
@pytest.mark.parametrize("case", FILE_BYTES_CASES, ids=[c[0] for c in FILE_BYTES_CASES])
def test_file_bytes_arrow_path_equals_token_loop(case, store_frequency):
    _, tokens, counts = case
    expected = vocab_mod._file_bytes_python(tokens, counts, store_frequency)
    assert vocabulary_file_bytes(tokens, counts, store_frequency=store_frequency) == expected
    fast = vocab_mod._file_bytes_arrow(tokens, counts, store_frequency)
    assert fast is None or fast == expected


def test_fold_sums_counts_across_runs():
    comb = VocabularyCombiner()
    rng = np.random.default_rng(3)
    tokens = np.array([b"t%d" % i for i in rng.integers(0, 500, 20_000)], dtype=object)
    accs = [comb.add_input(comb.create_accumulator(), (tokens[i:i + 997],))
            for i in range(0, len(tokens), 997)]
    merged = comb.merge_accumulators(accs)
    toks, counts, _ = comb.extract_output(merged)
    uniq, ref = np.unique(tokens.astype("S"), return_counts=True)
    assert dict(zip(toks.tolist(), counts.tolist())) == dict(zip(uniq.tolist(), ref.tolist()))


@pytest.mark.parametrize("k", [1, 5, 37, 199, 200, 1000])
def test_top_k_equals_select_k(k):
    rng = np.random.default_rng(k)
    tokens = pa.array([b"%x" % v for v in rng.permutation(200)], pa.large_binary())
    counts = pa.array(rng.integers(1, 6, 200), pa.int64())  # many ties at every count
    table = pa.table({"token": tokens, "count": counts})
    ours = vocab_mod._top_k(table, k)
    ref = table.take(pc.select_k_unstable(table, min(k, 200), vocab_mod._SORT_KEYS))
    keys = vocab_mod._SORT_KEYS
    assert ours.take(pc.sort_indices(ours, sort_keys=keys)).equals(
        ref.take(pc.sort_indices(ref, sort_keys=keys)))



def test_fold_is_exact_beyond_float64_integers():
    big = (1 << 60) + 1
    runs = [vocab_mod._run_from_arrow(pa.array([b"a", b"b"], pa.large_binary()),
                                      pa.array([big, 1], pa.int64())),
            vocab_mod._run_from_arrow(pa.array([b"b", b"a"], pa.large_binary()),
                                      pa.array([2, 3], pa.int64()))]
    tokens, counts = vocab_mod._run_to_arrow(vocab_mod._fold(runs))
    assert dict(zip(tokens.to_pylist(), counts.to_pylist())) == {b"a": big + 3, b"b": 3}


# ----------------------------------------------------------------------------- sharding


def _vocab_outputs(comb, batches, rnd):
    """extract_output after add_input per batch, random merges/compacts/pickling."""
    accs = []
    for batch in batches:
        if not accs or rnd.random() < 0.3:
            accs.append(comb.create_accumulator())
        accs[-1] = comb.add_input(accs[-1], (batch,))
    accs = [pickle.loads(pickle.dumps(a)) for a in accs]
    while len(accs) > 1:
        rnd.shuffle(accs)
        k = rnd.randint(2, len(accs))
        merged = comb.merge_accumulators(accs[:k])
        if rnd.random() < 0.4:
            merged = comb.compact(merged)
        accs = [merged] + accs[k:]
    return comb.extract_output(accs[0] if accs else comb.create_accumulator()), accs


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("config", [{}, {"top_k": 7}, {"top_k": 50, "frequency_threshold": 3},
                                    {"frequency_threshold": 2.5, "reserved_tokens": [b"t1"]},
                                    {"top_k": 1, "file_format": "tfrecord_gzip"}])
def test_sharded_accumulator_equals_unsharded(config, seed, monkeypatch):
    """Many shards (tiny _SHARD_MIN) give bit-identical results to one unsharded fold."""
    import random
    rng = np.random.default_rng(seed)
    vocab = np.array([b"t%d" % i for i in range(3000)] + [b"", b"a\nb", b"\xff"], dtype=object)
    zipf = np.minimum(rng.zipf(1.3, 40_000), len(vocab)) - 1
    tokens = vocab[zipf]
    cuts = np.sort(rng.integers(0, len(tokens), 25))
    batches = np.split(tokens, cuts)
    expected = _reference(list(tokens), False, config.get("top_k"),
                          config.get("frequency_threshold"), config.get("reserved_tokens"),
                          config.get("file_format", "text"))
    comb = VocabularyCombiner(**config)
    monkeypatch.setattr(vocab_mod, "_SHARD_MIN", 1 << 40)
    (t0, c0, u0), _ = _vocab_outputs(comb, batches, random.Random(seed))
    monkeypatch.setattr(vocab_mod, "_SHARD_MIN", 64)
    monkeypatch.setattr(vocab_mod, "_FOLD_MIN_PENDING", 16)
    monkeypatch.setattr(vocab_mod, "_COUNT_SLICE", 300)  # value_counts in slices
    monkeypatch.setattr(vocab_mod, "_HASH_SLICE", 37)
    (t1, c1, u1), accs = _vocab_outputs(comb, batches, random.Random(seed + 100))
    assert accs and len([k for k in accs[0] if k >= 0]) > 8  # really sharded
    assert t0.tolist() == t1.tolist() == expected[0]
    assert c0.tolist() == c1.tolist() == expected[1]
    assert int(u0) == int(u1) == expected[2]
    assert t1.dtype == object and c1.dtype == np.int64 and u1.dtype == np.int64
    # compact is canonical whatever the history; the Beam path (split, prune, merge) agrees.
    acc = accs[0]
    again = comb.merge_accumulators([comb.add_input(comb.create_accumulator(), (b,))
                                     for b in batches])
    ca, cb = comb.compact(acc), comb.compact(again)
    assert sorted(ca) == sorted(cb)
    for key in ca:
        assert all(x.tobytes() == y.tobytes() for x, y in zip(ca[key][0], cb[key][0]))
    for num_shards in (1, 3, 16):
        parts = comb.split(acc, num_shards)
        pruned = [comb.prune(p) for p in parts]
        merged = comb.merge_accumulators([p for p, _ in pruned])
        out = comb.with_unpruned_size(comb.extract_output(merged), sum(d for _, d in pruned))
        assert out[0].tolist() == expected[0] and out[1].tolist() == expected[1]
        assert int(out[2]) == expected[2]


def test_shard_hash_depends_only_on_the_token(monkeypatch):
    rng = np.random.default_rng(5)
    pool = [bytes(rng.integers(0, 256, n, dtype=np.uint8)) for n in rng.integers(0, 30, 400)]
    pool += [b"", b"a", b"a" * 8, b"a" * 9, b"a" * 17]

    def hashes(tokens):
        run = vocab_mod._run_from_arrow(pa.array(tokens, pa.large_binary()),
                                        pa.array(np.ones(len(tokens), np.int64)))
        return dict(zip(tokens, vocab_mod._shard_hash(run).tolist()))

    base = hashes(pool)
    monkeypatch.setattr(vocab_mod, "_HASH_SLICE", 7)
    shuffled = [pool[i] for i in rng.permutation(len(pool))]
    assert hashes(shuffled) == base
    assert hashes(pool[::-3]) == {t: base[t] for t in pool[::-3]}
    # shards are balanced on ordinary tokens
    ids = vocab_mod._shard_hash(vocab_mod._run_from_arrow(
        pa.array([b"%016x" % i for i in range(64_000)], pa.large_binary()),
        pa.array(np.ones(64_000, np.int64)))) % np.uint64(vocab_mod._SHARDS)
    counts = np.bincount(ids.astype(np.int64), minlength=vocab_mod._SHARDS)
    assert counts.min() > 0.8 * counts.mean()
