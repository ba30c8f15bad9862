"""Serving runs without Beam and without the tracer: checked in a fresh interpreter."""
import os
import subprocess
import sys
import textwrap

import numpy as np

import tft_lite as tft

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_load_and_transform_import_no_beam_and_no_tracer(tmp_path):
    spec = {"x": tft.FixedLenFeature([], "float32"), "s": tft.FixedLenFeature([], "string")}
    graph = tft.analyze(lambda t: {"z": tft.scale_to_z_score(t["x"]),
                                   "id": tft.compute_and_apply_vocabulary(t["s"])},
                        {"x": np.array([1.0, 2.0], np.float32), "s": ["a", "b"]}, spec)
    graph.save(tmp_path)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import tft_lite.serving
        graph = tft_lite.serving.load({str(tmp_path)!r})
        out = graph.transform({{"x": np.array([3.0], np.float32), "s": ["b"]}})
        assert out["id"].tolist() == [0], out  # ties: token bytes descending, as TFT
        one = graph.transform_instance({{"x": 1.0, "s": "a"}})
        forbidden = [m for m in sys.modules if m.split(".")[0] in ("apache_beam", "tensorflow")
                     or m.startswith(("tft_lite.trace", "tft_lite.analyzers", "tft_lite.plan",
                                      "tft_lite.local", "tft_lite.beam"))]
        print("FORBIDDEN", forbidden)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stderr
    assert "FORBIDDEN []" in result.stdout, result.stdout
