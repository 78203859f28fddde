from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner

from pipeline.runner import make_runner, worker_model_threads


def test_local_runs_use_the_fnapi_runner_never_prism():
    for args in ([], ["--runner", "DirectRunner"], ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                                                     "--direct_num_workers=2"]):
        assert isinstance(make_runner(PipelineOptions(args)), FnApiRunner)


def test_other_runners_are_left_to_beam():
    assert make_runner(PipelineOptions(["--runner", "DataflowRunner"])) is None


def test_model_threads_share_the_cores_among_local_worker_processes():
    multi = PipelineOptions(["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert worker_model_threads(multi, cpu_count=2) == 1
    assert worker_model_threads(multi, cpu_count=16) == 8
    assert worker_model_threads(multi, requested=3, cpu_count=2) == 3
    assert worker_model_threads(PipelineOptions([]), cpu_count=2) == 0  # in memory: torch's default
    assert worker_model_threads(PipelineOptions(["--runner", "DataflowRunner", "--direct_running_mode=multi_processing"]),
                                cpu_count=2) == 0
