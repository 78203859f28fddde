"""Choosing the Beam runner without depending on the Prism binary download."""
from __future__ import annotations

import os

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner

LOCAL_RUNNERS = (None, "DirectRunner", "FnApiRunner")


def make_runner(options: PipelineOptions) -> PipelineRunner | None:
    """The Beam runner: as asked, except that the DirectRunner is the portable FnApiRunner directly.

    Beam's default DirectRunner first tries to download the Prism binary; this machine room must not
    depend on that download, and the FnApiRunner honours --direct_running_mode/--direct_num_workers.
    """
    name = options.view_as(StandardOptions).runner
    if name not in LOCAL_RUNNERS:
        return None  # Beam resolves it from the options (DataflowRunner, ...)
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


def worker_model_threads(options: PipelineOptions, requested: int = 0, cpu_count: int | None = None) -> int:
    """Torch threads per worker process: ``requested`` when set (> 0); for a local multi-processing run,
    the machine's cores shared among its workers (so that N workers do not each start a thread per core
    and oversubscribe the CPU); otherwise 0, torch's default."""
    if requested > 0:
        return requested
    direct = options.view_as(DirectOptions)
    if options.view_as(StandardOptions).runner in LOCAL_RUNNERS and direct.direct_running_mode == "multi_processing":
        workers = max(1, direct.direct_num_workers or 1)
        return max(1, (cpu_count or os.cpu_count() or 1) // workers)
    return 0
