import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from pipeline.elements import DocumentFile
from pipeline.read import document_id
from pipeline.render import Progress, RenderPages
from tests.conftest import local_pipeline
from transforms.hostile_pdfs import encrypted_pdf, text_pdf


def _file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return DocumentFile(str(path), document_id(data), len(data)), data


def test_one_element_per_page_and_a_status_per_document(tmp_path):
    good = _file(tmp_path, "three pages.pdf", text_pdf(pages=3, text="Signature: John"))
    locked = _file(tmp_path, "locked.pdf", encrypted_pdf())
    with local_pipeline() as p:
        out = p | beam.Create([good, locked]) | RenderPages(dpi=72, max_pages=10, max_pixels=4_000_000)
        pages = out["pages"] | "Pages" >> beam.Map(
            lambda pg: (pg.page, pg.dpi, pg.image.dtype.name, pg.image.ndim, any("Signature" in w.text for w in pg.words)))
        assert_that(pages, equal_to([(n, 72, "uint8", 2, True) for n in (1, 2, 3)]), label="pages")
        statuses = out["statuses"] | "Statuses" >> beam.Map(lambda s: (s.source_path.rsplit("/", 1)[1], s.page_count,
                                                                        s.status, s.error_kind))
        assert_that(statuses, equal_to([("three pages.pdf", 3, "ok", None), ("locked.pdf", None, "error", "encrypted")]),
                    label="statuses")
        errors = out["errors"] | "Errors" >> beam.Map(lambda e: (e.stage, e.page, e.error_kind))
        assert_that(errors, equal_to([("RenderPages", None, "encrypted")]), label="errors")


def test_a_file_changed_during_the_run_is_reported(tmp_path):
    element = _file(tmp_path, "x.pdf", text_pdf())
    (tmp_path / "x.pdf").write_bytes(text_pdf(text="another text"))
    with local_pipeline() as p:
        out = p | beam.Create([element]) | RenderPages(dpi=72, max_pages=10, max_pixels=4_000_000)
        assert_that(out["pages"], equal_to([]), label="pages")
        errors = out["errors"] | beam.Map(lambda e: (e.page, e.error_kind))
        assert_that(errors, equal_to([(1, "changed_during_run")]), label="errors")


def test_progress_line_every_interval():
    now = [0.0]
    progress = Progress(every_s=10, clock=lambda: now[0])
    now[0] = 4.0
    assert progress.page_done("a.pdf") is None
    now[0] = 10.0
    assert progress.page_done("b.pdf") == "progress: 2 pages of 2 documents rendered, 0.20 pages/s"
    now[0] = 12.0
    assert progress.page_done("b.pdf") is None


def test_colour_dropout_takes_a_red_seal_out_of_the_rendered_page(tmp_path):
    import numpy as np
    import pymupdf
    import pytest

    doc = pymupdf.open()
    page = doc.new_page(width=300, height=200)
    page.draw_circle((150, 100), 60, color=(0.85, 0.1, 0.15), width=6)  # a red seal, nothing else
    element = _file(tmp_path, "sealed.pdf", doc.tobytes())
    with local_pipeline() as p:
        created = p | beam.Create([element])
        plain = created | "Plain" >> RenderPages(dpi=72, max_pages=10, max_pixels=4_000_000)
        dropped = created | "Dropped" >> RenderPages(dpi=72, max_pages=10, max_pixels=4_000_000, dropout="red")
        assert_that(plain["pages"] | "PlainInk" >> beam.Map(lambda pg: bool((pg.image < 128).any())),
                    equal_to([True]), label="plain")
        assert_that(dropped["pages"] | "DroppedInk" >> beam.Map(lambda pg: int(np.min(pg.image)) > 220),  # faint antialiased rims at most
                    equal_to([True]), label="dropped")
    with pytest.raises(ValueError, match="dropout must be one of"):
        RenderPages(dpi=72, max_pages=10, max_pixels=4_000_000, dropout="blue")
