"""The same pipeline on Beam's portable runner: a local job service with the LOOPBACK
environment, and with EXTERNAL SDK workers from a worker pool (the protocol Dataflow, Flink
and Spark workers speak). Graph bytes and output records must equal the in-process run."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.beam import test_pipeline as tp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process, seconds=60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited early with code {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port} after {seconds} s")


@pytest.fixture(scope="module")
def services():
    """A job service and a worker pool on loopback ports, stopped after the tests."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep +
               os.environ.get("PATH", ""), PYTHONPATH=ROOT)
    job_port, pool_port = _free_port(), _free_port()
    procs = [
        subprocess.Popen([sys.executable, "-m",
                          "apache_beam.runners.portability.local_job_service_main",
                          "--port", str(job_port)], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                          "--service_port", str(pool_port)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        _wait_for_port(job_port, procs[0])
        _wait_for_port(pool_port, procs[1])
        yield job_port, pool_port, env
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _run_in_subprocess(output_dir, flags, env):
    """Runs the pipeline in a child process with a timeout: a portable job whose workers
    cannot start waits forever, and a test must fail instead of hanging."""
    code = ("import sys; from tests.beam import test_pipeline as tp; "
            f"tp.analyze_and_write({str(output_dir)!r}, tp.no_quantiles_fn, *{flags!r})")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=300,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("environment", ["LOOPBACK", "EXTERNAL"])
def test_portable_runner_gives_identical_outputs(tmp_path, services, no_quantiles_run,
                                                 environment):
    job_port, pool_port, env = services
    flags = ["--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}",
             f"--environment_type={environment}"]
    if environment == "EXTERNAL":
        flags.append(f"--environment_config=localhost:{pool_port}")
    _run_in_subprocess(tmp_path, flags, env)
    assert tp.graph_bytes(tmp_path) == tp.graph_bytes(no_quantiles_run)
    assert tp.records(tmp_path) == tp.records(no_quantiles_run)


@pytest.fixture(scope="module")
def no_quantiles_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    tp.analyze_and_write(str(out), tp.no_quantiles_fn)
    return out
