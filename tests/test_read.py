import hashlib

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from pipeline.read import ReadDocuments, document_id, expand_pattern
from tests.conftest import local_pipeline


def test_document_id_is_sha256():
    assert document_id(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_folder_means_every_file(tmp_path):
    assert expand_pattern(str(tmp_path)) == str(tmp_path / "*")
    assert expand_pattern("gs://bucket/x/*.pdf") == "gs://bucket/x/*.pdf"


def test_reads_each_file_once_and_reports_bad_patterns_and_sizes(tmp_path):
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4 small")
    (tmp_path / "b c.pdf").write_bytes(b"%PDF-1.4 " + b"x" * 200)
    with local_pipeline() as p:
        out = p | ReadDocuments((str(tmp_path / "*.pdf"), str(tmp_path / "a.pdf"), str(tmp_path / "none*.pdf")),
                                max_file_bytes=100)
        docs = out["documents"] | "Docs" >> beam.Map(lambda kv: (kv[0].source_path.rsplit("/", 1)[1], kv[1]))
        assert_that(docs, equal_to([("a.pdf", b"%PDF-1.4 small")]), label="docs")
        kinds = out["errors"] | "Kinds" >> beam.Map(lambda e: (e.stage, e.error_kind))
        assert_that(kinds, equal_to([("ReadDocuments", "no_match"), ("ReadDocuments", "file_too_large")]),
                    label="errors")
        statuses = out["statuses"] | "Statuses" >> beam.Map(lambda s: (s.status, s.error_kind))
        assert_that(statuses, equal_to([("error", "file_too_large")]), label="statuses")
