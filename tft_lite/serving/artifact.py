"""The transform artifact directory: save and load.

  <path>/transform_fn/transform_graph.pb   the graph (ir/serialize.py format)
  <path>/transform_fn/assets/<name>        asset files (TFT text vocabularies)
  <path>/transformed_metadata/schema.json  output feature specs (tft_lite schema JSON)
  <path>/transformed_metadata/schema.pbtxt output schema as TFT writes it (TF Metadata)

Loading reads only these files, checks the graph's checksum and version and each asset's
sha256, and runs no code from them. Imports the ir, io and serving layers only.
"""
from __future__ import annotations

import os
import tempfile

from tft_lite.errors import GraphError
from tft_lite.io.schema_pbtxt import schema_to_pbtxt
from tft_lite.ir.schema import schema_to_json
from tft_lite.ir.serialize import graph_from_bytes, graph_to_bytes
from tft_lite.serving.graph import TransformGraph

TRANSFORM_FN_DIR = "transform_fn"
GRAPH_FILE = "transform_graph.pb"
ASSETS_DIR = "assets"
METADATA_DIR = "transformed_metadata"


def save(transform_graph: TransformGraph, path) -> None:
    """Writes `transform_graph` under directory `path` (created; files are replaced)."""
    path = os.fspath(path)
    fn_dir = os.path.join(path, TRANSFORM_FN_DIR)
    assets_dir = os.path.join(fn_dir, ASSETS_DIR)
    meta_dir = os.path.join(path, METADATA_DIR)
    for directory in (fn_dir, assets_dir, meta_dir):
        os.makedirs(directory, exist_ok=True)
    for name, data in transform_graph.assets.items():
        write_file(os.path.join(assets_dir, name), data)
    write_file(os.path.join(fn_dir, GRAPH_FILE), graph_to_bytes(transform_graph.graph))
    spec = transform_graph.transformed_feature_spec()
    write_file(os.path.join(meta_dir, "schema.json"), schema_to_json(spec).encode("utf-8"))
    pbtxt = schema_to_pbtxt(spec, transform_graph.transformed_int_domains())
    write_file(os.path.join(meta_dir, "schema.pbtxt"), pbtxt.encode("utf-8"))


def load(path) -> TransformGraph:
    """Reads an artifact directory written by `save` (or `tft_lite.analyze(...).save`).

    Raises:
      GraphError: missing, truncated or altered graph file, newer major format version,
        missing or altered asset file.
    """
    fn_dir = os.path.join(os.fspath(path), TRANSFORM_FN_DIR)
    graph_path = os.path.join(fn_dir, GRAPH_FILE)
    try:
        with open(graph_path, "rb") as f:
            data = f.read()
    except FileNotFoundError as exc:
        raise GraphError(f"no transform graph at {graph_path}") from exc
    graph = graph_from_bytes(data)
    assets = {}
    for node in graph.nodes:
        if node.op == "asset":
            name = node.attrs["filename"]
            try:
                with open(os.path.join(fn_dir, ASSETS_DIR, name), "rb") as f:
                    assets[name] = f.read()
            except FileNotFoundError as exc:
                raise GraphError(f"asset file {name!r} is missing from "
                                 f"{os.path.join(fn_dir, ASSETS_DIR)}") from exc
    return TransformGraph(graph, assets)


def write_file(path: str, data: bytes) -> None:
    """Atomic write: a temp file in the same directory, then os.replace (also used by the
    Beam sinks for local files)."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
