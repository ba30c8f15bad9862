"""Fixtures of the wire-format tests: the C and pure-Python codec/framing backends."""
from __future__ import annotations

import pytest

from tft_lite.io.example import codec_backend

BACKENDS = ["python"] + (["c"] if codec_backend() == "c" else [])


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """Runs a test with the pure-Python loops, then (when built) with the C extension."""
    if request.param == "python":
        monkeypatch.setenv("TFT_LITE_PURE_PYTHON", "1")
    else:
        monkeypatch.delenv("TFT_LITE_PURE_PYTHON", raising=False)
    return request.param
