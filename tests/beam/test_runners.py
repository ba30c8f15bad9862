"""The same pipeline on Beam's portable runner: a local job service with the LOOPBACK
environment, and with EXTERNAL SDK workers from a worker pool (the protocol Dataflow, Flink
and Spark workers speak). Graph bytes and output records must equal the in-process run."""
from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
import time

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from tests.beam import test_pipeline as tp
from tft_lite.beam.batches import in_global_window

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


def _run_in_subprocess(output_dir, flags, env, lazy=False):
    """Runs the pipeline in a child process with a timeout: a portable job whose workers
    cannot start waits forever, and a test must fail instead of hanging."""
    code = ("import sys; from tests.beam import test_pipeline as tp; "
            f"tp.analyze_and_write({str(output_dir)!r}, tp.no_quantiles_fn, *{flags!r}, "
            f"lazy={lazy!r}, block_size=300_000)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=300,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("environment,lazy", [("LOOPBACK", False), ("EXTERNAL", False),
                                              ("EXTERNAL", True)])
def test_portable_runner_gives_identical_outputs(tmp_path, services, no_quantiles_run,
                                                 environment, lazy):
    job_port, pool_port, env = services
    flags = ["--runner=PortableRunner", f"--job_endpoint=localhost:{job_port}",
             f"--environment_type={environment}"]
    if environment == "EXTERNAL":
        flags.append(f"--environment_config=localhost:{pool_port}")
    _run_in_subprocess(tmp_path, flags, env, lazy)
    assert tp.graph_bytes(tmp_path) == tp.graph_bytes(no_quantiles_run)
    assert tp.records(tmp_path) == tp.records(no_quantiles_run)


@pytest.fixture(scope="module")
def no_quantiles_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    tp.analyze_and_write(str(out), tp.no_quantiles_fn)
    return out


DASK_SCRIPT = """
import sys
from distributed import Client, LocalCluster
from tests.beam import test_pipeline as tp
if __name__ == "__main__":
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    try:
        tp.analyze_and_write(sys.argv[1], tp.no_quantiles_fn,
                             "--runner=tft_lite.beam.dask_runner.DaskRunner",
                             "--dask_client_address=" + cluster.scheduler_address,
                             "--dask_npartitions=4", lazy=sys.argv[2] == "lazy",
                             block_size=200_000)
    finally:
        client.close()
        cluster.close()
"""


@pytest.mark.parametrize("source", ["eager", "lazy"])
def test_dask_runner_with_two_worker_processes(tmp_path, no_quantiles_run, source):
    """tft_lite's DaskRunner (Beam's with its ParDo translation fixed) on a LocalCluster with
    2 worker processes: 200 kB blocks make 8 CSV ranges in 4 partitions. Beam 2.77's own
    DaskRunner fails this run (eager source) with InconsistentRunError (docs/runners.md)."""
    script = tmp_path / "run_dask.py"
    script.write_text(DASK_SCRIPT)
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, str(script), str(out), source], cwd=ROOT,
                            env=env, timeout=300, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(out)) == sorted(os.listdir(no_quantiles_run))
    assert tp.graph_bytes(out) == tp.graph_bytes(no_quantiles_run)
    assert tp.records(out) == tp.records(no_quantiles_run)
    for name in ("schema.json", "schema.pbtxt"):
        assert (out / "transformed_metadata" / name).read_bytes() == (
            no_quantiles_run / "transformed_metadata" / name).read_bytes()


class _CountBundle(beam.DoFn):
    """Yields each element, and its bundle's size from finish_bundle."""

    def start_bundle(self):
        self.n = 0

    def process(self, x):
        self.n += 1
        yield x

    def finish_bundle(self):
        yield in_global_window(("bundle", self.n))


class _Split(beam.DoFn):
    def process(self, x):
        yield beam.pvalue.TaggedOutput("bad", x) if x % 3 == 0 else x


def _dask_outputs(runner, address, build):
    """Runs build(Create(range(10)) in 4 partitions); returns the last bag's elements."""
    pipeline = beam.Pipeline(options=PipelineOptions([
        f"--runner={runner}", f"--dask_client_address={address}", "--dask_npartitions=4"]))
    build(pipeline | beam.Create(list(range(10))))
    result = pipeline.run()
    try:
        result.wait_until_finish()
        return collections.Counter(
            repr(x) for part in result.client.gather(result.futures) for x in part)
    finally:
        result.client.close()


def _count_bundles(numbers):
    numbers | beam.ParDo(_CountBundle())


def _split(numbers):
    good, bad = numbers | beam.ParDo(_Split()).with_outputs("bad", main="good")
    ((good | "Good" >> beam.Map(lambda x, bad: (x, sorted(bad)), bad=beam.pvalue.AsList(bad)),
      bad | "Bad" >> beam.Map(lambda x: ("bad", x))) | beam.Flatten())


def test_dask_runner_fixes_shared_receivers_finish_bundle_and_tags():
    """Partitions run in one process (threads): Beam's ParDo op shares one receiver list
    between them and returns earlier partitions' outputs again; ours returns each element
    once, plus the finish_bundle outputs Beam's op drops, and routes tagged outputs."""
    pytest.importorskip("distributed")
    from distributed import LocalCluster
    ours = "tft_lite.beam.dask_runner.DaskRunner"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert _dask_outputs(ours, address, _count_bundles) == collections.Counter(
            map(repr, [*range(10), *[("bundle", 3)] * 3, ("bundle", 1)]))
        beams = _dask_outputs("apache_beam.runners.dask.dask_runner.DaskRunner", address,
                              _count_bundles)
        assert sum(beams[repr(x)] for x in range(10)) > 10  # Beam's op duplicates elements
        assert _dask_outputs(ours, address, _split) == collections.Counter(map(repr, [
            *[(x, [0, 3, 6, 9]) for x in (1, 2, 4, 5, 7, 8)], *[("bad", x) for x in (0, 3, 6, 9)]
        ]))


def test_commit_refuses_shards_from_another_transform_fn():
    from tft_lite.beam.sinks import InconsistentRunError, check_digests
    check_digests([("a", 1, ("x",)), ("b", 2, ("x",))], "x")
    with pytest.raises(InconsistentRunError, match="2 different transform_fns"):
        check_digests([("a", 1, ("x",)), ("b", 2, ("y",))])
    with pytest.raises(InconsistentRunError):
        check_digests([("a", 1, ("x",))], "y")


def test_beams_own_dask_runner_is_refused_with_the_fix_named(tmp_path):
    """Beam 2.77's DaskRunner drops finish_bundle outputs: tft_lite's analysis would see no
    data and its shard writers write nothing, silently. Pipelines on it are refused when
    built, naming the runner to use instead; tft_lite's fixed subclass passes."""
    from apache_beam.runners.dask.dask_runner import DaskRunner as BeamDaskRunner

    import tft_lite.beam as tft_beam
    from tft_lite.beam.dask_runner import DaskRunner
    from tft_lite.beam.runners import UnsupportedRunnerError, check_runner

    pipeline = beam.Pipeline(runner=BeamDaskRunner())
    raw = pipeline | tft_beam.ReadCsv(tp.CSV, schema=tp.HOUSING_SPEC, lazy=True)
    with pytest.raises(UnsupportedRunnerError, match="tft_lite.beam.dask_runner.DaskRunner"):
        (raw, tft_beam.DatasetMetadata(tp.HOUSING_SPEC)) | tft_beam.AnalyzeDataset(
            tp.no_quantiles_fn)
    batches = pipeline | "Batches" >> beam.Create([])
    with pytest.raises(UnsupportedRunnerError):
        (batches, tp.HOUSING_SPEC) | tft_beam.WriteTFRecords(str(tmp_path / "x"))
    check_runner(beam.Pipeline(runner=DaskRunner()))  # the fixed runner passes
