"""Detector training data: real YOLO pages, synthetic contract pages with real signatures, augmentation.

Pages are kept as ``(S, S) uint8`` already stretched by the shared preprocessing (the same
``cv2.resize`` as ``transforms.detection_prep.prepare_page``), boxes as :class:`Box` lists.
Real training pages can first be put upright (:func:`upright_pages`: the export's quarter turns and
tilts undone, tilt-inflated boxes shrunk back, ``transforms.orientation``). Augmentation
(:func:`augment_page`) rotates by a multiple of 90 degrees with a given probability (so the detector
still finds signatures on turned pages), flips, zooms and shifts with independent x/y scales, tilts a
little, and changes contrast, blur, noise and JPEG quality. :func:`mosaic_page` tiles four augmented pages
around a random centre (YOLO's mosaic): each keeps its scale, the network sees parts of pages side by side.
:func:`copy_paste` lays labelled signatures of real pages (:func:`signature_bank`) as ink onto blank spots
of another real page (copy-paste augmentation).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pymupdf

from models.data import read_manifest, split_writers
from transforms.boxes import Box, iou
from transforms.demo_corpus import make_sample_contract
from transforms.orientation import label_orientation, upright_page
from transforms.pdf import pixmap_gray
from transforms.synth_document import ContractSpec, SignatureSlot, make_contract_pdf
from transforms.synth_letter import make_letter_page
from transforms.synth_marks import add_handwritten_marks
from transforms.synth_signature import crop_to_ink
from transforms.synth_text import COMPANIES, LABELS, TITLES, person_name, pick
from transforms.yolo import load_yolo_labels

log = logging.getLogger(__name__)

Page = tuple[np.ndarray, list[Box]]


def _stretch(image: np.ndarray, size: int) -> np.ndarray:
    """``(H, W) uint8`` -> ``(size, size) uint8`` with the interpolation of ``prepare_page``."""
    shrink = image.shape[0] >= size and image.shape[1] >= size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def load_yolo_pages(images_dir: Path, labels_dir: Path, size: int | None = None) -> tuple[list[str], list[Page]]:
    """Stems and ``(page, boxes)`` of every ``*.jpg``/``*.png`` in ``images_dir`` (sorted), labels matched
    by stem in ``labels_dir`` (a missing label file raises). Pages are stretched to ``size`` when given."""
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    if not images_dir.is_dir() or not labels_dir.is_dir():
        raise ValueError(f"images and labels folders must exist, got {images_dir} and {labels_dir}")
    paths = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    stems, pages = [], []
    for path in paths:
        label = labels_dir / f"{path.stem}.txt"
        if not label.is_file():
            raise ValueError(f"no label file {label} for image {path}")
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"cannot read image {path}")
        stems.append(path.stem)
        pages.append((_stretch(image, size) if size else image, load_yolo_labels(label)))
    return stems, pages


def upright_pages(pages: Sequence[Page]) -> list[Page]:
    """Each ``(page, boxes)`` turned and rotated until its text lines are horizontal (or upside down),
    its boxes moved along and shrunk back from tilted bounding boxes (``transforms.orientation``); the
    quarter turn is checked against the boxes' shape (``label_orientation``)."""
    return [upright_page(page, boxes, label_orientation(page, boxes)) for page, boxes in pages]


def training_signature_paths(manifest: Path, val_fraction: float, seed: int,
                             train_writers: Sequence[str] | None = None) -> tuple[list[Path], list[str]]:
    """Genuine signature images of the SigNet training writers only (``train_writers`` from the SigNet
    card when given, else ``models.data.split_writers(samples, val_fraction, seed)``, SigNet's own rule)."""
    samples = read_manifest(manifest)
    writers = set(train_writers) if train_writers else set(split_writers(samples, val_fraction, seed)[0])
    paths = [s.path for s in samples if s.label == "genuine" and s.writer in writers]
    if not paths:
        raise ValueError(f"no genuine signatures of training writers in {manifest}")
    return paths, sorted(writers)


def clean_signature(image: np.ndarray) -> np.ndarray:
    """A real signature scan ``(H, W) uint8`` with its paper brought to white, faint ink darkened to at
    least 60, cropped to the ink."""
    background = max(float(np.median(image)), 1.0)
    lifted = np.clip(image.astype(np.float32) * (255.0 / background), 0, 255)
    darkest = float(np.percentile(lifted, 0.5))
    if 60.0 < darkest < 250.0:
        lifted = 255.0 - (255.0 - lifted) * ((255.0 - 60.0) / (255.0 - darkest))
    lifted[lifted > 235] = 255
    return crop_to_ink(np.clip(lifted, 0, 255).astype(np.uint8), margin=2, threshold=200)


def synthetic_page(rng: np.random.Generator, signatures: Sequence[Path], size: int,
                   marks_rng: np.random.Generator | None = None, marks: float = 0.0) -> Page:
    """One synthetic contract page stretched to ``size``: scanned (JPEG, noise, stamps) or born-digital,
    A4 or letter, signed by 1-3 real signatures of ``signatures`` (sometimes left blank), or a page
    of the demo generator's drawn signatures; rendered at 72-110 dpi like a downscaled scan.

    With probability ``marks`` (drawn from ``marks_rng``, a generator of its own so that the page itself
    is the same with or without them) 1-6 handwritten non-signature marks (dates, figures, notes, ticks,
    circles: :mod:`transforms.synth_marks`) are drawn away from the signatures, as negatives."""
    if not 0.0 <= marks <= 1.0:
        raise ValueError(f"marks must be a probability in [0, 1], got {marks}")
    if marks > 0.0 and marks_rng is None:
        raise ValueError("marks > 0 needs a marks_rng")
    if rng.random() < 0.15:
        data, placed = make_sample_contract(rng, scanned=bool(rng.random() < 0.7), dpi=100)
    else:
        k = int(rng.integers(1, 4))
        slots = tuple(SignatureSlot(f"s{i}", person_name(rng), pick(rng, LABELS)) for i in range(k))
        images = []
        for _ in slots:
            if rng.random() < 0.12:
                images.append(None)  # an expected signature left blank: a negative line
                continue
            images.append(_signature_image(rng, signatures))
        a, b = rng.choice(len(COMPANIES), size=2, replace=False)
        spec = ContractSpec(title=pick(rng, TITLES), parties=(COMPANIES[int(a)], COMPANIES[int(b)]), slots=slots,
                            scanned=bool(rng.random() < 0.7), dpi=100, jpeg_quality=int(rng.integers(35, 85)),
                            stamp=bool(rng.random() < 0.6),
                            page_size=(595.0, 842.0) if rng.random() < 0.6 else (612.0, 792.0))
        data, placed = make_contract_pdf(spec, images, rng)
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        page = doc[doc.page_count - 1]
        pix = page.get_pixmap(dpi=int(rng.integers(72, 111)), colorspace=pymupdf.csGRAY, alpha=False)
        image = pixmap_gray(pix)
        last = doc.page_count
    boxes = [p.box for p in placed if p.page == last]
    if marks_rng is not None and marks_rng.random() < marks:
        image = add_handwritten_marks(image, marks_rng, int(marks_rng.integers(1, 7)),
                                      avoid=[(b.x0, b.y0, b.x1, b.y1) for b in boxes])
    return _stretch(image, size), boxes


def _signature_image(rng: np.random.Generator, signatures: Sequence[Path]) -> np.ndarray | None:
    """One of ``signatures`` read and cleaned (:func:`clean_signature`), or None when it is unreadable or blank."""
    img = cv2.imread(str(signatures[int(rng.integers(len(signatures)))]), cv2.IMREAD_GRAYSCALE)
    sig = None if img is None else clean_signature(img)
    return sig if sig is not None and (sig < 200).any() else None


def synthetic_letter(rng: np.random.Generator, signatures: Sequence[Path], size: int) -> Page:
    """One synthetic typewritten business letter (:func:`transforms.synth_letter.make_letter_page`) stretched
    to ``size``, signed by one (three times in four) or two real signatures of ``signatures``, a tenth of
    the signers leaving it unsigned; rendered at 72-110 dpi, with handwritten marks on some."""
    sigs = [None if rng.random() < 0.1 else _signature_image(rng, signatures)
            for _ in range(1 + int(rng.random() < 0.25))]
    image, boxes = make_letter_page(rng, sigs, int(rng.integers(72, 111)))
    return _stretch(image, size), boxes


def synthetic_pages(n: int, seed: int, signatures: Sequence[Path], size: int, marks: float = 0.0,
                    letters: float = 0.0) -> list[Page]:
    """``n`` synthetic pages, page ``i`` reproducible from its seeds: with probability ``letters`` (drawn from
    ``default_rng([seed, i, 2])``) a :func:`synthetic_letter` from ``default_rng([seed, i, 3])``, otherwise
    the contract page :func:`synthetic_page` from ``default_rng([seed, i])`` with its handwritten marks
    (probability ``marks``) from ``default_rng([seed, i, 1])``; the contract pages are the same whatever
    ``letters`` is."""
    if not 0.0 <= letters <= 1.0:
        raise ValueError(f"letters must be a probability in [0, 1], got {letters}")
    pages = []
    for i in range(n):
        if letters > 0.0 and np.random.default_rng([seed, i, 2]).random() < letters:
            pages.append(synthetic_letter(np.random.default_rng([seed, i, 3]), signatures, size))
        else:
            pages.append(synthetic_page(np.random.default_rng([seed, i]), signatures, size,
                                        np.random.default_rng([seed, i, 1]), marks))
        if (i + 1) % 50 == 0:
            log.info("synthetic pages: %d/%d", i + 1, n)
    return pages


def _affine_boxes(boxes: Sequence[Box], m: np.ndarray, size: int, min_visible: float = 0.5,
                  rect: tuple[int, int, int, int] | None = None) -> list[Box]:
    """``boxes`` moved by the 2x3 pixel affine ``m`` on a ``size`` page (bounding box of the moved corners),
    clipped to ``rect = (x0, y0, x1, y1)`` (default: the page); a box keeping less than ``min_visible`` of
    its area there is dropped."""
    rx0, ry0, rx1, ry1 = rect if rect is not None else (0, 0, size, size)
    out = []
    for b in boxes:
        corners = np.array([[b.x0, b.y0], [b.x1, b.y0], [b.x0, b.y1], [b.x1, b.y1]]) * size
        moved = corners @ m[:, :2].T + m[:, 2]
        (x0, y0), (x1, y1) = moved.min(axis=0), moved.max(axis=0)
        full = (x1 - x0) * (y1 - y0)
        cx0, cy0, cx1, cy1 = max(x0, rx0), max(y0, ry0), min(x1, rx1), min(y1, ry1)
        if cx1 - cx0 < 1 or cy1 - cy0 < 1 or (cx1 - cx0) * (cy1 - cy0) < min_visible * full:
            continue
        out.append(Box.from_pixels(cx0, cy0, cx1, cy1, size, size))
    return out


ZOOM_RANGE = (0.8, 1.25)  # augment_page's default zoom range (log-uniform)


def augment_page(page: np.ndarray, boxes: Sequence[Box], rng: np.random.Generator,
                 quarter_turns: float = 0.5, zoom: tuple[float, float] = ZOOM_RANGE) -> Page:
    """A randomly transformed copy of a square ``(S, S) uint8`` page and its boxes (see module doc);
    ``quarter_turns``: the probability of a random turn by 0, 90, 180 or 270 degrees; ``zoom``: the
    range ``(lo, hi)`` the scale is drawn from, log-uniformly."""
    if not 0.0 < zoom[0] <= zoom[1]:
        raise ValueError(f"zoom must be a range (lo, hi) with 0 < lo <= hi, got {zoom}")
    size = page.shape[0]
    c = size / 2.0
    k = int(rng.integers(4)) if rng.random() < quarter_turns else 0  # quarter turns (counter-clockwise)
    angle = 90.0 * k + float(rng.normal(0, 1.0))
    scale = float(np.exp(rng.uniform(np.log(zoom[0]), np.log(zoom[1]))))
    ratio = float(np.exp(rng.uniform(-0.12, 0.12)))
    m = cv2.getRotationMatrix2D((c, c), angle, 1.0)
    s = np.diag([scale * ratio, scale / ratio])
    flip = rng.random() < 0.3
    if flip:
        s[0, 0] = -s[0, 0]
    shift = rng.uniform(-0.12, 0.12, 2) * size
    lin = s @ m[:, :2]
    m = np.hstack([lin, (np.array([c, c]) - lin @ np.array([c, c]) + shift)[:, None]])
    paper = int(np.percentile(page, 90))
    out = cv2.warpAffine(page, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=paper)
    moved = _affine_boxes(boxes, m, size)
    f = out.astype(np.float32)
    if rng.random() < 0.8:
        f = 255.0 - (255.0 - f) * rng.uniform(0.6, 1.2) + rng.uniform(-25, 15)  # ink strength, paper tone
    if rng.random() < 0.3:
        f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.3, 1.0))
    if rng.random() < 0.4:
        f = f + rng.standard_normal(f.shape, dtype=np.float32) * rng.uniform(2, 10)
    out = np.clip(f, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out, moved


def mosaic_page(parts: Sequence[Page], rng: np.random.Generator) -> Page:
    """YOLO's mosaic on four square ``(S, S) uint8`` pages: a centre ``(cx, cy)`` is drawn uniformly in the
    middle half of the page; the top-left quadrant shows the first page's bottom-right corner, the
    top-right the second's bottom-left, the bottom-left the third's top-right, the bottom-right the
    fourth's top-left. Pages keep their scale; boxes are clipped to their quadrant (dropped below half
    their area)."""
    if len(parts) != 4:
        raise ValueError(f"mosaic_page needs 4 pages, got {len(parts)}")
    size = parts[0][0].shape[0]
    if any(p.shape != (size, size) for p, _ in parts):
        raise ValueError(f"mosaic pages must all be ({size}, {size}), got {[p.shape for p, _ in parts]}")
    cx, cy = (int(v) for v in rng.integers(size // 4, 3 * size // 4 + 1, 2))
    out = np.empty((size, size), np.uint8)
    boxes: list[Box] = []
    # (destination rectangle x0, y0, x1, y1; shift of the part's pixels into the output)
    layout = (((0, 0, cx, cy), (cx - size, cy - size)), ((cx, 0, size, cy), (cx, cy - size)),
              ((0, cy, cx, size), (cx - size, cy)), ((cx, cy, size, size), (cx, cy)))
    for (page, page_boxes), (rect, (dx, dy)) in zip(parts, layout, strict=True):
        x0, y0, x1, y1 = rect
        if x1 > x0 and y1 > y0:
            out[y0:y1, x0:x1] = page[y0 - dy:y1 - dy, x0 - dx:x1 - dx]
            boxes += _affine_boxes(page_boxes, np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]]), size, rect=rect)
    return out, boxes


def signature_bank(pages: Sequence[Page], min_side: int = 6) -> list[np.ndarray]:
    """The labelled signatures of real pages as patches ``(h, w) uint8`` (each box's pixels, the paper
    brought to white by the patch's own median), for :func:`copy_paste`; boxes under ``min_side`` pixels
    on a side are left out."""
    bank = []
    for page, boxes in pages:
        rows, cols = page.shape
        for box in boxes:
            x0, y0, x1, y1 = box.to_pixels(cols, rows)
            if x1 - x0 < min_side or y1 - y0 < min_side:
                continue
            patch = page[y0:y1, x0:x1].astype(np.float32)
            paper = max(float(np.median(patch)), 1.0)
            bank.append(np.clip(patch * (255.0 / paper), 0, 255).astype(np.uint8))
    return bank


def copy_paste(page: np.ndarray, boxes: Sequence[Box], bank: Sequence[np.ndarray], rng: np.random.Generator,
               most: int = 2, tries: int = 20, zoom: tuple[float, float] = (0.8, 1.25)) -> Page:
    """Copy-paste augmentation (Ghiasi et al. 2021, arXiv 2012.07177) on a real page: 1 to ``most``
    signatures of ``bank`` (:func:`signature_bank`), each scaled by a factor drawn log-uniformly in
    ``zoom``, laid as ink over the page (the darker of page and patch) where the spot is nearly blank
    (under 1 % of its pixels darker than 180) and clear of every box, within ``tries`` draws each; their
    boxes join the page's. A signature that finds no spot is left out."""
    if not bank:
        raise ValueError("copy_paste needs a non-empty signature bank")
    size = page.shape[0]
    out, placed = page.copy(), list(boxes)
    for _ in range(int(rng.integers(1, most + 1))):
        patch = bank[int(rng.integers(len(bank)))]
        scale = float(np.exp(rng.uniform(np.log(zoom[0]), np.log(zoom[1]))))
        h, w = max(int(round(patch.shape[0] * scale)), 2), max(int(round(patch.shape[1] * scale)), 2)
        if h >= size * 0.6 or w >= size * 0.9:
            continue
        patch = cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        for _ in range(tries):
            x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
            box = Box.from_pixels(x, y, x + w, y + h, size, size)
            grown = Box(max(box.x0 - 0.02, 0.0), max(box.y0 - 0.02, 0.0), min(box.x1 + 0.02, 1.0), min(box.y1 + 0.02, 1.0))
            spot = out[y:y + h, x:x + w]
            if np.mean(spot < 180) < 0.01 and all(iou(grown, b) == 0.0 for b in placed):
                out[y:y + h, x:x + w] = np.minimum(spot, patch)
                placed.append(box)
                break
    return out, placed
