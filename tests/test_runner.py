from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner.fn_runner import FnApiRunner

from pipeline.runner import make_runner


def test_local_runs_use_the_fnapi_runner_never_prism():
    for args in ([], ["--runner", "DirectRunner"], ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                                                     "--direct_num_workers=2"]):
        assert isinstance(make_runner(PipelineOptions(args)), FnApiRunner)


def test_other_runners_are_left_to_beam():
    assert make_runner(PipelineOptions(["--runner", "DataflowRunner"])) is None
