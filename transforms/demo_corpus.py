"""The built-in demo corpus: a dozen synthetic contract PDFs, a reference bank and the ground truth.

``make_demo_corpus(out_dir, seed)`` writes::

    out_dir/documents/*.pdf                 born-digital and scanned contracts (one name with a space,
                                            one non-ASCII)
    out_dir/references/<signer_id>/*.png    genuine reference signatures, (H, W) gray, ink dark
    out_dir/expected.csv                    document,signer_id: one row per required signer and document
    out_dir/truth.csv                       document,page,x0,y0,x1,y1,signer_id,kind: every placed signature

Same seed, same bytes. ``make_sample_contract`` makes one contract in memory for tests.
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from transforms.synth_document import ContractSpec, PlacedSignature, SignatureSlot, make_contract_pdf
from transforms.synth_signature import SignatureStyle, draw_signature, make_style
from transforms.synth_text import COMPANIES, LABELS, TITLES, person_name, pick

logger = logging.getLogger(__name__)
_SIG_HEIGHT = 150  # pixel height of reference and placed signature images


@dataclass(frozen=True)
class DemoDocument:
    """One generated PDF: its path, whether its pages are scanned images, the signers it requires and
    the signatures actually on it."""

    path: Path
    scanned: bool
    n_pages: int
    expected_signers: tuple[str, ...]
    placements: tuple[PlacedSignature, ...]

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class DemoCorpus:
    """Paths of a written demo corpus and what was placed where."""

    root: Path
    documents_dir: Path
    references_dir: Path
    expected_csv: Path
    truth_csv: Path
    signer_ids: tuple[str, ...]
    documents: tuple[DemoDocument, ...]

    @property
    def placements(self) -> dict[str, tuple[PlacedSignature, ...]]:
        """Placed signatures keyed by document file name."""
        return {d.name: d.placements for d in self.documents}


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c if c.isalnum() else "_" for c in ascii_text.lower()).strip("_")


def write_references(styles: Mapping[str, SignatureStyle], out_dir: Path, rng: np.random.Generator,
                     n: int = 5) -> dict[str, list[Path]]:
    """``n`` genuine PNGs per signer under ``out_dir/<signer_id>/ref_<k>.png``; returns their paths."""
    if not 1 <= n <= 100:
        raise ValueError(f"references per signer must be 1..100, got {n}")
    paths: dict[str, list[Path]] = {}
    for sid, style in styles.items():
        folder = out_dir / sid
        folder.mkdir(parents=True, exist_ok=True)
        paths[sid] = []
        for k in range(n):
            path = folder / f"ref_{k + 1:02d}.png"
            cv2.imwrite(str(path), draw_signature(style, rng, height=_SIG_HEIGHT))
            paths[sid].append(path)
    return paths


def _images(slots: Sequence[SignatureSlot], styles: Mapping[str, SignatureStyle], missing: set[int],
            rng: np.random.Generator) -> list[np.ndarray | None]:
    return [None if i in missing else
            draw_signature(styles[s.signer_id], rng, height=_SIG_HEIGHT, forged=s.kind == "forged")
            for i, s in enumerate(slots)]


def write_signature_manifest(root: Path, n_writers: int = 3, n_genuine: int = 7, n_forged: int = 2,
                             height: int = 60, seed: int = 0) -> Path:
    """A small signature collection in the layout of the shared data's manifest, for tests and demos.

    Writes ``root/w<k>/<label>/<i>.png`` (drawn synthetic writers, forgeries imitating them) and
    ``root/manifest.csv`` with columns ``path`` (relative to root), ``dataset``, ``writer``, ``label``,
    ``medium``; returns the manifest's path.
    """
    if n_writers < 1 or n_genuine < 1 or n_forged < 0:
        raise ValueError(f"need >= 1 writer and genuine image and >= 0 forgeries, got "
                         f"{n_writers}, {n_genuine}, {n_forged}")
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(n_writers):
        style = make_style(rng)
        for label, n in (("genuine", n_genuine), ("forged", n_forged)):
            for i in range(n):
                rel = f"w{w}/{label}/{i:02d}.png"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / rel), draw_signature(style, rng, height=height, forged=label == "forged"))
                rows.append({"path": rel, "dataset": "synthetic", "writer": f"w{w}", "label": label,
                             "medium": "paper"})
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def make_sample_contract(rng: np.random.Generator, *, styles: Mapping[str, SignatureStyle] | None = None,
                         scanned: bool = True, n_pages: int = 1, forged_ids: Sequence[str] = (),
                         missing_ids: Sequence[str] = (), dpi: int = 150) -> tuple[bytes, list[PlacedSignature]]:
    """One contract PDF in memory, signed on the last page by every signer of ``styles`` (two fresh
    writers 'signer_a', 'signer_b' when None); ``forged_ids`` sign with a forgery, ``missing_ids`` not at
    all. Returns the PDF bytes and the placements. A scanned single page takes well under a second."""
    if styles is None:
        styles = {"signer_a": make_style(rng), "signer_b": make_style(rng)}
    unknown = sorted((set(forged_ids) | set(missing_ids)) - set(styles))
    if unknown:
        raise ValueError(f"forged/missing ids {unknown} are not among the signers {sorted(styles)}")
    slots = tuple(SignatureSlot(sid, sid.replace("_", " ").title(), pick(rng, LABELS),
                                kind="forged" if sid in forged_ids else "genuine") for sid in styles)
    missing = {i for i, s in enumerate(slots) if s.signer_id in missing_ids}
    spec = ContractSpec(title=pick(rng, TITLES), parties=(COMPANIES[0], COMPANIES[1]), slots=slots,
                        n_pages=n_pages, scanned=scanned, dpi=dpi)
    return make_contract_pdf(spec, _images(slots, styles, missing, rng), rng)


def make_scanned_contract(rng: np.random.Generator, **kwargs: object) -> tuple[bytes, list[PlacedSignature]]:
    """``make_sample_contract`` with image-only (scanned) pages."""
    return make_sample_contract(rng, scanned=True, **kwargs)  # type: ignore[arg-type]


def _file_name(i: int, title: str, party: str) -> str:
    if i == 4:
        return f"{i + 1:02d} {title.lower()} - {party.split()[0]}.pdf"  # a name with spaces
    if i == 7:
        return f"{i + 1:02d}_contrat_de_société_{_slug(party)}.pdf"  # a non-ASCII name
    return f"{i + 1:02d}_{_slug(title)}_{_slug(party)}.pdf"


def _document_spec(i: int, rng: np.random.Generator, signer_ids: Sequence[str],
                   names: Mapping[str, str]) -> tuple[ContractSpec, set[int]]:
    """The spec of document ``i`` and the indices of its slots whose signature is missing (a document
    depends only on the seed and ``i``, so a smaller corpus is a prefix of a larger one)."""
    n_pages = int(rng.choice([1, 1, 2, 2, 3]))
    blank = i % 8 == 3 and len(signer_ids) > 1  # an expected signature left blank
    k = int(rng.integers(2 if blank else 1, min(3, len(signer_ids)) + 1))
    chosen = [signer_ids[int(j)] for j in rng.choice(len(signer_ids), size=k, replace=False)]
    forged_at = int(rng.integers(k)) if (i % 4 == 2 or rng.random() < 0.15) else -1
    slots = [SignatureSlot(sid, names[sid], pick(rng, LABELS), kind="forged" if j == forged_at else "genuine")
             for j, sid in enumerate(chosen)]
    if n_pages > 1 and rng.random() < 0.5:  # the first signer also initials the first page
        slots.append(SignatureSlot(chosen[0], names[chosen[0]], "Initials:", page=1))
    missing: set[int] = set()
    if blank:
        missing.add(int(rng.integers(k)))
    a, b = rng.choice(len(COMPANIES), size=2, replace=False)
    parties = (COMPANIES[int(a)], COMPANIES[int(b)])
    spec = ContractSpec(title=pick(rng, TITLES), parties=parties,
                        slots=tuple(slots), n_pages=n_pages, scanned=i % 2 == 1,
                        date=f"{int(rng.integers(1, 29))} {pick(rng, ('January', 'March', 'June', 'October'))} 2026",
                        dpi=int(rng.choice([150, 150, 200])), jpeg_quality=int(rng.integers(40, 65)))
    return spec, missing


def make_demo_corpus(out_dir: Path, seed: int = 0, n_documents: int = 12, n_signers: int = 5,
                     references_per_signer: int = 5) -> DemoCorpus:
    """Write the demo corpus under ``out_dir`` (created; existing files of the same names are replaced).

    Half the documents are born-digital (text layer), half scanned (JPEG image pages); each has 1-3
    required signers, some signatures are forged and one or two expected signatures are missing.
    Deterministic: the same ``seed`` writes the same bytes.
    """
    if not 1 <= n_documents <= 1000:
        raise ValueError(f"n_documents must be 1..1000, got {n_documents}")
    if not 1 <= n_signers <= 100:
        raise ValueError(f"n_signers must be 1..100, got {n_signers}")
    out_dir = Path(out_dir)
    docs_dir, refs_dir = out_dir / "documents", out_dir / "references"
    docs_dir.mkdir(parents=True, exist_ok=True)
    refs_dir.mkdir(parents=True, exist_ok=True)
    srng = np.random.default_rng([seed, 0])
    names: dict[str, str] = {}
    while len(names) < n_signers:
        name = person_name(srng)
        sid = _slug(name)
        if sid not in names:
            names[sid] = name
    signer_ids = tuple(sorted(names))
    styles = {sid: make_style(np.random.default_rng([seed, 1, k])) for k, sid in enumerate(signer_ids)}
    write_references(styles, refs_dir, np.random.default_rng([seed, 2]), references_per_signer)
    documents: list[DemoDocument] = []
    for i in range(n_documents):
        rng = np.random.default_rng([seed, 3, i])
        spec, missing = _document_spec(i, rng, signer_ids, names)
        data, placed = make_contract_pdf(spec, _images(spec.slots, styles, missing, rng), rng)
        path = docs_dir / _file_name(i, spec.title, spec.parties[0])
        path.write_bytes(data)
        expected = tuple(dict.fromkeys(s.signer_id for s in spec.slots))
        documents.append(DemoDocument(path, spec.scanned, spec.n_pages, expected, tuple(placed)))
        logger.info("wrote %s (%d pages, %s, %d signatures)", path.name, spec.n_pages,
                    "scanned" if spec.scanned else "born-digital", len(placed))
    expected_csv, truth_csv = out_dir / "expected.csv", out_dir / "truth.csv"
    with expected_csv.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["document", "signer_id"])
        w.writerows([d.name, sid] for d in documents for sid in d.expected_signers)
    with truth_csv.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["document", "page", "x0", "y0", "x1", "y1", "signer_id", "kind"])
        w.writerows([d.name, p.page, f"{p.box.x0:.6f}", f"{p.box.y0:.6f}", f"{p.box.x1:.6f}",
                     f"{p.box.y1:.6f}", p.signer_id, p.kind] for d in documents for p in d.placements)
    return DemoCorpus(out_dir, docs_dir, refs_dir, expected_csv, truth_csv, signer_ids, tuple(documents))


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m transforms.demo_corpus OUT [--seed N]``: write a corpus, print a JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--documents", type=int, default=12)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    corpus = make_demo_corpus(args.out_dir, args.seed, args.documents)
    print(json.dumps({"root": str(corpus.root), "documents": len(corpus.documents),
                      "signers": list(corpus.signer_ids),
                      "signatures": sum(len(d.placements) for d in corpus.documents)}, ensure_ascii=False))


if __name__ == "__main__":
    main()
