"""sigaudit: audit the signatures of PDF contracts with Apache Beam.

    python run_pipeline.py [--input PATTERN ...] [--references DIR] [--expected CSV] [--output DIR]
                           [--run_date YYYY-MM-DD] [--dpi 200] [--max_pages 500] [Beam options]

Without --input, a built-in demo corpus is generated under OUTPUT/demo_corpus and audited.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions
from apache_beam.runners.runner import PipelineResult, PipelineState

from pipeline.audit import build_audit, model_versions, resolve_models
from pipeline.expected import read_expected
from pipeline.options import AuditConfig, parse_args
from pipeline.reports import RunInfo, replace_partitions
from pipeline.review import write_review
from pipeline.runner import make_runner, worker_model_threads
from pipeline.summary import processed_documents, summarize

LOGGER = logging.getLogger("sigaudit")


def with_demo_corpus(config: AuditConfig) -> AuditConfig:
    """The config itself, or, without inputs, one that audits a freshly generated demo corpus."""
    if config.inputs:
        return config
    from transforms.demo_corpus import make_demo_corpus

    corpus = make_demo_corpus(os.path.join(config.output, "demo_corpus"), seed=config.demo_seed)
    LOGGER.info("no --input: auditing the built-in demo corpus in %s", corpus.root)
    return dataclasses.replace(
        config, inputs=(os.path.join(str(corpus.documents_dir), "*.pdf"),),
        references=config.references or str(corpus.references_dir),
        expected=config.expected or str(corpus.expected_csv))


def run(argv: Sequence[str] | None = None, save_main_session: bool = True,
        test_pipeline: beam.Pipeline | None = None) -> PipelineResult:
    """Build and run the audit; returns the finished PipelineResult (prints a summary on a local run)."""
    config, beam_args = parse_args(argv)
    config = resolve_models(with_demo_corpus(config))
    options = PipelineOptions(beam_args)
    config = dataclasses.replace(config, model_threads=worker_model_threads(options, config.model_threads))
    options.view_as(SetupOptions).save_main_session = save_main_session
    expected = read_expected(config.expected)
    skip = {}
    if config.skip_processed:
        skip = processed_documents(config.output, model_versions(config), exclude_run_date=config.run_date)
        LOGGER.info("--skip_processed: %d documents already processed with the same models", len(skip))

    pipeline = test_pipeline or beam.Pipeline(runner=make_runner(options), options=options)
    build_audit(pipeline, config, expected, skip)
    result = pipeline.run()
    state = result.wait_until_finish()
    review = None
    if state == PipelineState.DONE and test_pipeline is None:
        replaced = replace_partitions(config.output, RunInfo(config.run_id, config.run_date))
        if replaced:
            LOGGER.info("replaced %d report files of earlier runs of %s", replaced, config.run_date)
        if config.review:
            review = write_review(config.output, config.run_date, config.run_id, config.references)
    if "://" not in config.output:
        print(summarize(config.output, config.run_date, config.run_id))
        if review:
            print(f"review page: {review}")
    return result


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("apache_beam", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        run(sys.argv[1:])
    except ValueError as exc:
        LOGGER.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
