"""End-to-end throughput of the audit on a generated scanned-contract corpus, beside its stages' own compute.

    python -m benchmarks.throughput [--pages 300] [--workers 2] [--clean] [--out /tmp/sigaudit_bench]

The corpus: image-only ("scanned") one-page contract PDFs at 200 DPI, one signature per page, and a
reference bank. It prints, as a table:
- the stages' own compute per page, measured in one process on the same pages with the same functions
  the pipeline uses (render, detect, clean, preprocess + embed), and their sum;
- a baseline that only renders the pages;
- the whole pipeline on the DirectRunner (FnApiRunner), in memory and with ``--workers`` processes:
  pages/s end to end, its ratio to the summed stage compute, the share of the review page, and the
  peak RSS (this process and its worker processes together, sampled);
- the marginal cost of a page in memory: the run on the whole corpus against a run on its first half,
  which separates the per-page cost from the fixed start-up of a run (model loading, runner set-up).
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np

import run_pipeline
from models.clean import clean_images, cleaning_options, load_cleaner
from models.detect import detect_pages, load_detector
from models.embed import embed_batch
from models.weights import load_embedder
from pipeline.audit import resolve_models
from pipeline.options import AuditConfig
from transforms.crops import crop_region
from transforms.demo_corpus import make_sample_contract, write_references
from transforms.pdf import iter_pages
from transforms.preprocess import preprocess_signature
from transforms.regions import find_signature_regions
from transforms.synth_signature import make_style

LOGGER = logging.getLogger("benchmarks.throughput")
DPI = 200


def make_corpus(root: Path, pages: int, seed: int = 7) -> tuple[Path, Path]:
    """``pages`` one-page scanned contracts (one signer each, among 5) and the signers' references."""
    rng = np.random.default_rng(seed)
    styles = {f"signer_{i}": make_style(rng) for i in range(5)}
    documents = root / "documents"
    documents.mkdir(parents=True, exist_ok=True)
    for i in range(pages):
        signer = f"signer_{i % 5}"
        data, _ = make_sample_contract(rng, styles={signer: styles[signer]}, scanned=True, dpi=DPI)
        (documents / f"contract_{i:04d}.pdf").write_bytes(data)
    write_references(styles, root / "references", rng, n=5)
    return documents, root / "references"


def stage_times(documents: Path, config: AuditConfig) -> dict[str, float]:
    """Seconds per page of each stage, measured directly on the corpus (one process)."""
    timings = {"render": 0.0, "detect": 0.0, "clean": 0.0, "embed": 0.0}
    pages = []
    for path in sorted(documents.glob("*.pdf")):
        start = time.perf_counter()
        pages.extend(iter_pages(path.read_bytes(), dpi=DPI))
        timings["render"] += time.perf_counter() - start
    crops = []
    if config.detector == "model":
        model, card = load_detector(config.detector_weights)
        start = time.perf_counter()
        for page, boxes in zip(pages, detect_pages(model, [p.image for p in pages], card), strict=True):
            crops.extend(crop_region(page.image, box) for box in boxes)
        timings["detect"] = time.perf_counter() - start
    else:
        start = time.perf_counter()
        for page in pages:
            crops.extend(crop_region(page.image, b) for b in find_signature_regions(page.image, page.words))
        timings["detect"] = time.perf_counter() - start
    if config.clean and crops:
        cleaner, card = load_cleaner(config.cleaner_weights)
        start = time.perf_counter()
        crops = clean_images(cleaner, crops, **cleaning_options(card))
        timings["clean"] = time.perf_counter() - start
    embedder, _ = load_embedder(config.weights)
    start = time.perf_counter()
    arrays = np.stack([preprocess_signature(c) for c in crops]) if crops else np.zeros((0, 155, 220), np.float32)
    for i in range(0, len(arrays), 32):
        embed_batch(embedder, arrays[i:i + 32])
    timings["embed"] = time.perf_counter() - start
    return {stage: seconds / max(len(pages), 1) for stage, seconds in timings.items()}


def pipeline_run(documents: Path, references: Path, output: Path, extra: list[str]) -> float:
    """Wall seconds of one whole run of the audit."""
    shutil.rmtree(output, ignore_errors=True)
    start = time.perf_counter()
    run_pipeline.run(["--input", str(documents / "*.pdf"), "--references", str(references), "--output",
                      str(output), "--dpi", str(DPI), *extra], save_main_session=False)
    return time.perf_counter() - start


def _tree_rss_mb(root: int) -> float:
    """Resident memory of process ``root`` and all its descendants now, in MB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read().rsplit(")", 1)[1].split()
            children.setdefault(int(stat[1]), []).append(int(entry))
            rss[int(entry)] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total / 2**20


class PeakRss:
    """Samples the RSS of this process and its worker processes every ``every_s`` seconds in a thread:
    ``with PeakRss() as peak: ...; peak.mb``. (getrusage's children figure would count each worker at its
    parent's size: the fork before exec.)"""

    def __init__(self, every_s: float = 0.2) -> None:
        self.every_s, self.mb = every_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.mb = max(self.mb, _tree_rss_mb(os.getpid()))
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def copy_subset(paths: list[Path], folder: Path) -> Path:
    """A fresh ``folder`` holding copies of ``paths``; returns ``folder``."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path in paths:
        shutil.copyfile(path, folder / path.name)
    return folder


def review_seconds(output: Path) -> float:
    """Wall seconds of writing the review page again for the finished run in ``output``."""
    from pipeline.review import write_review
    from pipeline.summary import read_table

    run_date = next((output / "documents").glob("run_date=*")).name.split("=", 1)[1]
    run_id = read_table(str(output), "documents", run_date).column("run_id")[0].as_py()
    start = time.perf_counter()
    write_review(str(output), run_date, run_id, str(output.parent / "corpus" / "references"))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=300,
                        help="one-page contracts in the corpus (a nightly batch: amortizes the ~1.6 s start-up)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the second run (0: skip it)")
    parser.add_argument("--out", default="/tmp/sigaudit_bench")
    parser.add_argument("--detector", default="auto", choices=("auto", "model", "classical"))
    parser.add_argument("--clean", action=argparse.BooleanOptionalAction, default=None,
                        help="clean the crops (default: as the shipped cleaner's card says)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    root = Path(args.out)
    documents, references = make_corpus(root / "corpus", args.pages)
    config = resolve_models(AuditConfig(inputs=(str(documents),), detector=args.detector, clean=args.clean))
    per_page = stage_times(documents, config)
    compute = sum(per_page.values())
    flags = ["--detector", config.detector, "--clean" if config.clean else "--no-clean"]
    pdfs = sorted(documents.glob("*.pdf"))
    half = copy_subset(pdfs[: args.pages // 2], root / "corpus" / "half")
    warm = copy_subset(pdfs[:1], root / "corpus" / "warm")
    pipeline_run(warm, references, root / "out_warm", flags)  # one-time imports and caches of this process
    half_seconds = pipeline_run(half, references, root / "out_half", flags)
    with PeakRss() as peak_mem:
        runs = {"pipeline in memory": pipeline_run(documents, references, root / "out_mem", flags)}
    review = review_seconds(root / "out_mem")
    # marginal cost of a page: the second half of the corpus, beyond the fixed start-up of a run
    marginal = (runs["pipeline in memory"] - half_seconds) / (args.pages - args.pages // 2)
    startup = half_seconds - marginal * (args.pages // 2)
    if args.workers > 0:
        with PeakRss() as peak_multi:
            runs[f"pipeline {args.workers} workers"] = pipeline_run(documents, references, root / "out_multi", [
                *flags, "--direct_running_mode=multi_processing", f"--direct_num_workers={args.workers}"])
    print(f"corpus: {args.pages} scanned one-page contracts at {DPI} DPI; detector={config.detector}, "
          f"clean={config.clean}")
    print(f"{'stage':<28}{'s/page':>10}{'pages/s':>10}")
    for stage, seconds in per_page.items():
        print(f"{stage:<28}{seconds:>10.3f}{(1 / seconds if seconds else float('inf')):>10.1f}")
    print(f"{'sum of stages (1 process)':<28}{compute:>10.3f}{1 / compute:>10.1f}")
    print(f"{'baseline: render only':<28}{per_page['render']:>10.3f}{1 / per_page['render']:>10.1f}")
    for name, seconds in runs.items():
        print(f"{name:<28}{seconds / args.pages:>10.3f}{args.pages / seconds:>10.1f}"
              f"   overhead x{seconds / args.pages / compute:.2f} of the stages' compute")
    print(f"{'  of which the review page':<28}{review / args.pages:>10.3f}"
          f"   (in-memory run without it: x{(runs['pipeline in memory'] - review) / args.pages / compute:.2f})")
    print(f"{'in memory, per extra page':<28}{marginal:>10.3f}{1 / marginal:>10.1f}"
          f"   overhead x{marginal / compute:.2f} of the stages' compute (run on {args.pages // 2} vs "
          f"{args.pages} pages; fixed start-up of a run about {startup:.1f} s)")
    print(f"peak RSS (sampled every 0.2 s; this process, which also holds the stage timing's models, and its "
          f"workers together): in memory {peak_mem.mb:.0f} MB"
          + (f", {args.workers} workers {peak_multi.mb:.0f} MB" if args.workers > 0 else ""))


if __name__ == "__main__":
    main()
