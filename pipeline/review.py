"""The auditor's review page: one static, self-contained HTML file per run, read back from the reports.

``OUTPUT/review/run_date=YYYY-MM-DD/index.html``. Documents that need a look come first (errors and
mismatches, then reviews, then missing expected signers, then verified ones); each shows its pages with the
signature regions boxed (coloured by decision), every region's crop, cleaned crop, the first enrolled
reference of its expected (and closest) signer, similarity and decision. Images are embedded as data URIs,
so the file opens offline in any browser; there is no JavaScript. Pure post-processing, no Beam pipeline.
"""
from __future__ import annotations

import base64
import html
import logging
import os
from collections import defaultdict
from collections.abc import Iterable

import cv2
import numpy as np
from apache_beam.io.filesystems import FileSystems

from pipeline.elements import base_name
from pipeline.paths import is_remote, join_path
from pipeline.summary import OUTCOMES, RunSummary, expected_outcomes, read_table
from transforms.boxes import Box
from transforms.pdf import DocumentError, open_pdf, render_page
from transforms.thumbnail import THUMB_WIDTH  # the same width as the thumbnails FindSignatures stores

LOGGER = logging.getLogger(__name__)

THUMB_DPI = 50
THUMB_MAX_PIXELS = 4_000_000  # a page larger than this at THUMB_DPI gets a placeholder
CROP_SIZE = (260, 110)  # max (width, height) px of a crop or reference on the page
_RANK = {"match": 0, "review": 1, "mismatch": 2}
_BGR = {"match": (60, 150, 40), "review": (0, 140, 235), "mismatch": (40, 40, 215), "none": (150, 150, 150)}
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1180px;padding:16px;color:#222;background:#f6f6f4}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:0;word-break:break-all}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #ddd}
.muted{color:#777;font-size:12px;word-break:break-all}.stats td{border:0}.stats td:first-child{color:#666}
.doc{background:#fff;border:1px solid #ddd;border-left:6px solid #999;border-radius:4px;margin:14px 0;padding:10px 14px}
.doc.error,.doc.mismatch{border-left-color:#d42a2a}.doc.review{border-left-color:#e98b00}
.doc.missing{border-left-color:#7a5cc0}.doc.match{border-left-color:#3a963a}
.b{display:inline-block;border-radius:3px;padding:0 6px;margin:1px 2px;font-size:12px;color:#fff;background:#888}
.b.match,.b.ok{background:#3a963a}.b.review{background:#e98b00}.b.mismatch,.b.error{background:#d42a2a}
.b.missing{background:#7a5cc0}.err{color:#b01c1c;word-break:break-word}
.page{display:flex;gap:12px;margin-top:10px;align-items:flex-start}.page>figure{margin:0;flex:none}
.regions{display:flex;flex-wrap:wrap;gap:10px}.region{border:1px solid #e3e3e3;border-radius:4px;padding:6px}
.imgs{display:flex;gap:8px;align-items:flex-end}.imgs figure{margin:0}
figcaption{font-size:11px;color:#666}img,svg.ref{display:block;border:1px solid #ccc;background:#fff}
.ph{display:flex;align-items:center;justify-content:center;min-width:90px;min-height:40px;padding:4px;
border:1px dashed #bbb;color:#888;font-size:11px;background:#fafafa;max-width:260px}
"""


def review_path(output: str, run_date: str) -> str:
    """``OUTPUT/review/run_date=YYYY-MM-DD/index.html``."""
    return join_path(output, "review", f"run_date={run_date}", "index.html")


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _badge(text: str, kind: str) -> str:
    return f'<span class="b {_esc(kind)}">{_esc(text)}</span>'


def _placeholder(text: str) -> str:
    return f'<div class="ph">{_esc(text)}</div>'


def _fit(image: np.ndarray, max_width: int, max_height: int) -> np.ndarray:
    """``image`` shrunk (never enlarged) to fit ``max_width`` x ``max_height``, aspect kept."""
    height, width = image.shape[:2]
    scale = min(max_width / width, max_height / height, 1.0)
    if scale >= 1.0:
        return image
    size = (max(int(round(width * scale)), 1), max(int(round(height * scale)), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _data_uri(image: np.ndarray, jpeg: bool = False) -> str:
    """``image`` ((H, W) uint8 gray or (H, W, 3) uint8 BGR) as a data URI: JPEG (page thumbnails) or
    lossless PNG (crops and references: the auditor sees exactly what the model saw, shrunk)."""
    ok, buffer = cv2.imencode(".jpg" if jpeg else ".png", image,
                              [cv2.IMWRITE_JPEG_QUALITY, 60] if jpeg else [])
    if not ok:
        raise ValueError(f"image encoding failed for an image of shape {image.shape}")
    mime = "image/jpeg" if jpeg else "image/png"
    return f"data:{mime};base64,{base64.b64encode(buffer.tobytes()).decode('ascii')}"


def _decode(image_bytes: bytes | None, fit: tuple[int, int] | None = CROP_SIZE) -> np.ndarray | None:
    """``(h, w) uint8`` gray image decoded from ``image_bytes`` (any format OpenCV reads) and shrunk to
    ``fit`` (max width, height; None = as is); None when absent or unreadable."""
    if not image_bytes:
        return None
    image = cv2.imdecode(np.frombuffer(image_bytes, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        return None
    return image if fit is None else _fit(image, *fit)


def _img(image_bytes: bytes | None, caption: str, missing: str) -> str:
    """A figure with the image of ``image_bytes``, or a placeholder saying ``missing``."""
    image = _decode(image_bytes)
    body = (_placeholder(missing) if image is None
            else f'<img src="{_data_uri(image)}" alt="{_esc(caption)}">')
    return f"<figure>{body}<figcaption>{_esc(caption)}</figcaption></figure>"


def _reason(exc: Exception) -> str:
    return f"{exc.kind}: {exc.message}" if isinstance(exc, DocumentError) else str(exc)


def _drawn_thumbnail(image: np.ndarray, page: int, regions: list[tuple[int, Box, str]]) -> str:
    """``<img>`` of a gray page image fitted to THUMB_WIDTH with its ``(region, box, decision)`` drawn."""
    thumb = cv2.cvtColor(_fit(image, THUMB_WIDTH, 10 * THUMB_WIDTH), cv2.COLOR_GRAY2BGR)
    height, width = thumb.shape[:2]
    for region, box, decision in regions:
        x0, y0, x1, y1 = box.to_pixels(width, height)
        cv2.rectangle(thumb, (x0, y0), (x1 - 1, y1 - 1), _BGR[decision], 2)
        cv2.putText(thumb, str(region), (x0, max(y0 - 3, 9)), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                    _BGR[decision], 1, cv2.LINE_AA)
    return f'<img src="{_data_uri(thumb, jpeg=True)}" alt="page {page}" width="{width}">'


def render_thumbnails(source_path: str, boxes: dict[int, list[tuple[int, Box, str]]],
                      stored: dict[int, bytes] | None = None) -> dict[int, str]:
    """``page -> <img> or placeholder HTML`` for each 1-based page of ``boxes``, THUMB_WIDTH px wide, its
    ``(region, box, decision)`` drawn. ``stored``: page thumbnails the run already made (the signatures
    report's ``page_thumb_jpeg``); only the other pages are opened and rendered again, at THUMB_DPI.
    A document or page that cannot be read or rendered gets a placeholder saying why; never raises."""
    shown: dict[int, str] = {}
    missing = []
    for page, regions in boxes.items():
        image = _decode((stored or {}).get(page), fit=None)
        if image is None:
            missing.append(page)
        else:
            shown[page] = _drawn_thumbnail(image, page, regions)
    if not missing:
        return shown
    try:
        with FileSystems.open(source_path, compression_type="uncompressed") as handle:
            data = handle.read()
        doc = open_pdf(data)
    except (OSError, DocumentError) as exc:  # BeamIOError is an OSError
        LOGGER.warning("review: cannot open %s: %s", source_path, exc)
        return {**shown, **{page: _placeholder(f"page {page} not shown: {_reason(exc)}") for page in missing}}
    try:
        for page in missing:
            try:
                image = render_page(doc, page - 1, dpi=THUMB_DPI, max_pixels=THUMB_MAX_PIXELS, min_dpi=THUMB_DPI).image
            except (DocumentError, ValueError) as exc:
                shown[page] = _placeholder(f"page {page} not shown: {_reason(exc)}")
                continue
            shown[page] = _drawn_thumbnail(image, page, boxes[page])
    finally:
        doc.close()
    return {page: shown[page] for page in boxes}


class _References:
    """The first enrolled reference image (sorted by name) of each signer, embedded once in an SVG ``<defs>``
    and shown with ``<use>`` wherever needed: a few signers sign many documents."""

    def __init__(self, references_dir: str | None) -> None:
        self._dir = references_dir
        self._shown: dict[str, tuple[str, int, int] | None] = {}  # signer -> (defs id, width, height)
        self._defs: list[str] = []

    def figure(self, signer_id: str, caption: str) -> str:
        """A figure showing the signer's reference, or a placeholder when they have none."""
        if signer_id not in self._shown:
            self._shown[signer_id] = self._define(signer_id)
        shown = self._shown[signer_id]
        if shown is None:
            body = _placeholder(f"no reference for {signer_id}")
        else:
            ref, width, height = shown
            body = (f'<svg class="ref" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
                    f'<title>{_esc(caption)}</title><use href="#{ref}"/></svg>')
        return f"<figure>{body}<figcaption>{_esc(caption)}</figcaption></figure>"

    def defs(self) -> str:
        """The hidden SVG holding every reference shown (empty when none)."""
        if not self._defs:
            return ""
        return ('<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
                + "".join(self._defs) + "</defs></svg>")

    def _define(self, signer_id: str) -> tuple[str, int, int] | None:
        image = _decode(self._read(signer_id))
        if image is None:
            return None
        ref = f"ref{len(self._defs)}"
        height, width = image.shape
        self._defs.append(f'<image id="{ref}" width="{width}" height="{height}" href="{_data_uri(image)}"/>')
        return ref, width, height

    def _read(self, signer_id: str) -> bytes | None:
        if not self._dir:
            return None
        try:
            found = FileSystems.match([join_path(self._dir, signer_id, "*")])[0].metadata_list
            paths = sorted(m.path for m in found if m.path.lower().endswith(_IMAGE_SUFFIXES))
            if not paths:
                return None
            with FileSystems.open(paths[0], compression_type="uncompressed") as handle:
                return handle.read()
        except OSError as exc:
            LOGGER.warning("review: no reference for %s: %s", signer_id, exc)
            return None


def _effective(match: dict) -> str:
    """A match row's decision as ``expected_outcomes`` counts it: a match that is not rank 1 is a review."""
    return match["decision"] if match["decision"] != "match" or match["rank"] == 1 else "review"


def _region_focus(matches: list[dict]) -> tuple[str, dict | None, dict | None]:
    """``(colour decision, focus row, closest row)`` of one region's match rows: the focus is the expected
    signer with the best decision (then similarity), else the closest (rank 1) signer."""
    closest = min(matches, key=lambda m: m["rank"], default=None)
    expected = [m for m in matches if m["expected"]]
    if expected:
        focus = min(expected, key=lambda m: (_RANK[_effective(m)], -m["similarity"]))
        return _effective(focus), focus, closest
    return (closest["decision"] if closest else "none"), closest, closest


def document_priority(document: dict, outcomes: dict[str, str]) -> int:
    """Sort key of a document (``outcomes``: signer -> outcome): 0 error or mismatch, 1 review, 2 missing,
    3 verified, 4 nothing expected, 5 skipped."""
    values = set(outcomes.values())
    if document["status"] == "skipped":
        return 5
    if document["status"] == "error" or "mismatch" in values:
        return 0
    for rank, outcome in ((1, "review"), (2, "missing")):
        if outcome in values:
            return rank
    return 3 if values else 4


def _document_class(priority: int, document: dict) -> str:
    if document["status"] == "error":
        return "error"
    return {0: "mismatch", 1: "review", 2: "missing", 3: "match"}.get(priority, "")


def _outcome_badges(document: dict, outcomes: dict[str, str]) -> str:
    """``signer: outcome`` badges of a document's expected signers; "not checked" where the document was
    skipped or unreadable."""
    return " ".join(_badge(f"{s}: {outcomes.get(s, 'not checked')}", outcomes.get(s, "")) for s in
                    document["expected_signers"])


def _region_html(sig: dict, matches: list[dict], references: _References) -> str:
    decision, focus, closest = _region_focus(matches)
    images = [_img(sig["crop_png"], "crop", "no crop"), _img(sig["cleaned_png"], "cleaned", "not cleaned")]
    signers = [] if focus is None else [(focus["signer_id"], "reference")]
    if closest is not None and focus is not None and closest["signer_id"] != focus["signer_id"]:
        signers.append((closest["signer_id"], "closest's reference"))
    images += [references.figure(signer, f"{label}: {signer}") for signer, label in signers]
    shown = sorted((m for m in matches if m["expected"] or m is closest), key=lambda m: m["rank"])
    rows = "".join(
        f"<tr><td>{_esc(m['signer_id'])}{' (expected)' if m['expected'] else ''}</td>"
        f"<td>{m['similarity']:.3f}</td><td>{_badge(m['decision'], m['decision'])}</td><td>#{m['rank']}</td></tr>"
        for m in shown) or '<tr><td colspan="4">no enrolled signer to compare with</td></tr>'
    return (f'<div class="region"><div>page {sig["page"]}, region {sig["region"]} '
            f'{_badge(decision, decision)} <span class="muted">{_esc(sig["detector"])} '
            f'{sig["detector_score"]:.2f}</span></div><div class="imgs">{"".join(images)}</div>'
            f'<table><tr><th>signer</th><th>similarity</th><th>decision</th><th>rank</th></tr>{rows}</table></div>')


def _box(sig: dict) -> Box | None:
    """The region's box, or None (logged) when its coordinates are not a valid box: not drawn then."""
    try:
        return Box(sig["x0"], sig["y0"], sig["x1"], sig["y1"])
    except ValueError as exc:
        LOGGER.warning("review: region %d of page %d of %s not drawn: %s", sig["region"], sig["page"],
                       sig["source_path"], exc)
        return None


def _document_html(anchor: str, doc: dict, priority: int, outcomes: dict[str, str], sigs: list[dict],
                   matches: dict[tuple[int, int], list[dict]], errors: list[dict], references: _References) -> str:
    name = base_name(doc["source_path"])
    status = _badge(doc["status"], doc["status"])
    if doc["error_kind"]:
        status += f' <span class="err">{_esc(doc["error_kind"])}: {_esc(doc["error_message"])}</span>'
    signers = _outcome_badges(doc, outcomes)
    parts = [f'<section class="doc {_document_class(priority, doc)}" id="{anchor}"><h2>{_esc(name)}</h2>',
             f'<div class="muted">{_esc(doc["source_path"])}</div>',
             f"<div>{status} · {doc['page_count'] or 0} page(s) · {len(sigs)} region(s)"
             f"{' · verified' if doc['verified'] else ''}</div>",
             f"<div>expected: {signers or 'nobody'}</div>"]
    parts += [f'<div class="err">{_esc(e["stage"])}{"" if e["page"] is None else " page " + str(e["page"])}: '
              f'{_esc(e["error_kind"])}: {_esc(e["error_message"])}</div>' for e in errors]
    by_page: dict[int, list[dict]] = defaultdict(list)
    for sig in sorted(sigs, key=lambda s: (s["page"], s["region"])):
        by_page[sig["page"]].append(sig)
    boxes = {page: [(s["region"], box, _region_focus(matches.get((page, s["region"]), []))[0])
                    for s in page_sigs if (box := _box(s)) is not None] for page, page_sigs in by_page.items()}
    if not boxes and doc["status"] == "ok" and doc["page_count"] and doc["expected_signers"]:
        boxes = {doc["page_count"]: []}  # no region found: show the last page, where signatures usually are
    stored = {s["page"]: s["page_thumb_jpeg"] for s in sigs if s.get("page_thumb_jpeg")}
    thumbs = render_thumbnails(doc["source_path"], boxes, stored) if boxes else {}
    for page, thumb in thumbs.items():
        caption = f"page {page}" if by_page.get(page) else f"page {page}: no signature region found"
        cards = "".join(_region_html(s, matches.get((page, s["region"]), []), references) for s in by_page[page])
        parts.append(f'<div class="page"><figure>{thumb}<figcaption>{_esc(caption)}</figcaption></figure>'
                     f'<div class="regions">{cards}</div></div>')
    return "".join(parts) + "</section>"


def _header_html(run_date: str, run_id: str, summary: RunSummary, versions: Iterable[str]) -> str:
    stats = [("documents", summary.documents), ("failed", summary.documents_failed),
             ("skipped (already processed)", summary.documents_skipped), ("pages", summary.pages),
             ("signature regions", summary.signatures),
             ("expected signatures", " ".join(_badge(f"{summary.outcomes.get(o, 0)} {o}", o) for o in OUTCOMES)),
             ("errors", summary.errors), ("models", "<br>".join(_esc(v) for v in versions))]
    rows = "".join(f"<tr><td>{_esc(k)}</td><td>{v}</td></tr>" for k, v in stats)
    legend = " ".join(_badge(d, d) for d in ("match", "review", "mismatch"))
    return (f"<h1>sigaudit review: {_esc(run_date)}</h1><div class=\"muted\">run {_esc(run_id)}</div>"
            f'<table class="stats">{rows}</table><p>Box colours: {legend}; documents needing a look come first.</p>')


def write_review(output: str, run_date: str, run_id: str, references_dir: str | None = None,
                 max_documents: int = 500) -> str:
    """Write the review page of run ``run_id`` from its reports under ``output``; returns its path.

    The first ``max_documents`` documents (in review order) are shown with images, the others only listed.
    """
    if max_documents < 0:
        raise ValueError(f"max_documents must be >= 0, got {max_documents}")
    documents = read_table(output, "documents", run_date, run_id).to_pylist()
    signatures = read_table(output, "signatures", run_date, run_id).to_pylist()
    match_rows = read_table(output, "matches", run_date, run_id).to_pylist()
    errors = read_table(output, "errors", run_date, run_id).to_pylist()
    outcomes = expected_outcomes(documents, match_rows)
    per_doc: dict[str, dict[str, str]] = defaultdict(dict)
    for (document_id, signer), outcome in outcomes.items():
        per_doc[document_id][signer] = outcome
    sigs_by_doc: dict[str, list[dict]] = defaultdict(list)
    for sig in signatures:
        sigs_by_doc[sig["document_id"]].append(sig)
    matches: dict[str, dict[tuple[int, int], list[dict]]] = defaultdict(lambda: defaultdict(list))
    for m in match_rows:
        matches[m["document_id"]][(m["page"], m["region"])].append(m)
    errors_by_path: dict[str, list[dict]] = defaultdict(list)
    for e in errors:
        errors_by_path[e["source_path"] or ""].append(e)

    keyed = sorted(((document_priority(d, per_doc.get(d["document_id"] or "", {})), base_name(d["source_path"]),
                     d["source_path"], d) for d in documents), key=lambda k: k[:3])
    summary = RunSummary(len(documents), sum(d["status"] == "error" for d in documents),
                         sum(d["status"] == "skipped" for d in documents),
                         sum(d["page_count"] or 0 for d in documents), len(signatures),
                         {o: list(outcomes.values()).count(o) for o in OUTCOMES}, len(errors), output)
    references = _References(references_dir)
    index, details = [], []
    for i, (priority, name, path, doc) in enumerate(keyed):
        doc_outcomes = per_doc.get(doc["document_id"] or "", {})
        detailed = priority < 5 and len(details) < max_documents
        link = f'<a href="#d{i}">{_esc(name)}</a>' if detailed else _esc(name)
        index.append(f"<tr><td>{link}</td><td>{_badge(doc['status'], doc['status'])}</td>"
                     f"<td>{_outcome_badges(doc, doc_outcomes)}</td></tr>")
        if detailed:
            details.append(_document_html(f"d{i}", doc, priority, doc_outcomes, sigs_by_doc.get(doc["document_id"], []),
                                          matches.get(doc["document_id"], {}), errors_by_path.pop(path, []), references))
    others = [e for rows in errors_by_path.values() for e in rows]
    other_html = "".join(f"<tr><td>{_esc(e['stage'])}</td><td>{_esc(e['source_path'])}</td><td>{_esc(e['error_kind'])}"
                         f"</td><td>{_esc(e['error_message'])}</td></tr>" for e in others)
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>sigaudit review {_esc(run_date)}</title><style>{_CSS}</style></head><body>"
            + _header_html(run_date, run_id, summary, sorted({d["model_versions"] for d in documents}))
            + f"<h2>Documents</h2><table class=\"index\">{''.join(index)}</table>"
            + (f"<p>{len(keyed) - len(details)} document(s) listed above are not shown in detail.</p>"
               if len(details) < len(keyed) else "")
            + "".join(details)
            + (f"<h2>Errors not shown above</h2><table>{other_html}</table>" if others else "")
            + references.defs()
            + "</body></html>")
    path = review_path(output, run_date)
    if not is_remote(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with FileSystems.create(path, mime_type="text/html", compression_type="uncompressed") as handle:
        handle.write(page.encode("utf-8"))
    LOGGER.info("review page: %s (%d documents in detail, %d KiB)", path, len(details), len(page) // 1024)
    return path
