"""The pipeline's own flags: parsed into a typed config; everything else goes to Beam's PipelineOptions."""
from __future__ import annotations

import argparse
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from transforms.dropout import DROPOUT_COLOURS

DEFAULT_DPI = 200
DEFAULT_MAX_PAGES = 500
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_BATCH_SIZE = 32
DETECTORS = ("auto", "model", "classical")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class AuditConfig:
    """The resolved configuration of one audit run (what a run's flags mean, with their defaults)."""

    inputs: tuple[str, ...] = ()
    references: str | None = None
    expected: str | None = None
    output: str = "out"
    run_date: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).date().isoformat())
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    dpi: int = DEFAULT_DPI
    max_pages: int = DEFAULT_MAX_PAGES
    max_pixels: int = DEFAULT_MAX_PIXELS
    detector: str = "auto"  # auto = the learned model when its weights are shipped, else classical
    device: str = "auto"
    weights: str | None = None
    detector_weights: str | None = None
    clean: bool | None = None  # None = clean when cleaning weights are shipped
    cleaner_weights: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    demo_seed: int = 0
    skip_processed: bool = False
    review: bool = True  # write the auditor's static review page after a successful run
    model_threads: int = 0  # torch threads per worker process for inference; 0 = torch's default
    colour_dropout: str = "none"  # colour taken out of the pages as they are turned gray (transforms.dropout)

    def __post_init__(self) -> None:
        if not 50 <= self.dpi <= 600:
            raise ValueError(f"dpi must be 50..600, got {self.dpi}")
        if self.max_pages < 1:
            raise ValueError(f"max_pages must be at least 1, got {self.max_pages}")
        if self.max_pixels < 1_000_000:
            raise ValueError(f"max_pixels must be at least 1000000, got {self.max_pixels}")
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {self.detector!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        if not 0 <= self.model_threads <= 256:
            raise ValueError(f"model_threads must be 0..256, got {self.model_threads}")
        if self.colour_dropout not in DROPOUT_COLOURS:
            raise ValueError(f"colour_dropout must be one of {DROPOUT_COLOURS}, got {self.colour_dropout!r}")
        if not 1 <= self.batch_size <= 1024:
            raise ValueError(f"batch_size must be 1..1024, got {self.batch_size}")
        try:
            dt.date.fromisoformat(self.run_date)
        except ValueError:
            raise ValueError(f"run_date must be YYYY-MM-DD, got {self.run_date!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_pipeline.py",
        description=(
            "sigaudit: find the signatures in PDF contracts, compare them with the enrolled reference "
            "signatures of the expected signers and write Parquet audit reports. Without --input, a "
            "built-in demo corpus is generated and audited (works offline). Flags not listed here are "
            "Apache Beam pipeline options (--runner, --direct_running_mode, --direct_num_workers, ...)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--input", dest="inputs", nargs="+", action="extend", default=[], metavar="PATTERN",
                        help="PDF file patterns, local or any Beam filesystem (gs://bucket/contracts/*.pdf); "
                             "none = the built-in demo corpus")
    parser.add_argument("--references", default=None, metavar="DIR",
                        help="folder with one subfolder per signer id holding that person's reference "
                             "signature images (png, jpg, tif)")
    parser.add_argument("--expected", default=None, metavar="CSV",
                        help="CSV with header 'document,signer_id' (document = the input file's base name), "
                             "one row per required signature")
    parser.add_argument("--output", default="out", metavar="DIR",
                        help="report folder: OUTPUT/<table>/run_date=YYYY-MM-DD/*.parquet")
    parser.add_argument("--run_date", default=AuditConfig().run_date, metavar="YYYY-MM-DD",
                        help="the partition the reports are written to (default: today, UTC)")
    parser.add_argument("--dpi", type=int, default=DEFAULT_DPI, help="page rendering resolution (50..600)")
    parser.add_argument("--max_pages", type=int, default=DEFAULT_MAX_PAGES,
                        help="documents with more pages fail with error_kind too_many_pages")
    parser.add_argument("--colour_dropout", choices=DROPOUT_COLOURS, default="none",
                        help="render pages in colour and take this colour's ink out as they are turned gray: "
                             "'red' drops red seals and stamps over signatures (and a signature written in red)")
    parser.add_argument("--max_pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="pixel budget of one rendered page: larger pages render at a lower DPI")
    parser.add_argument("--detector", choices=DETECTORS, default="auto",
                        help="signature region finder: the learned 'model' (auto: when its weights are "
                             "shipped) or the OpenCV 'classical' finder")
    parser.add_argument("--detector_weights", default=None, metavar="PATH",
                        help="detector weights (.safetensors, model card beside it); default: the shipped "
                             "models/weights/detector.safetensors")
    parser.add_argument("--clean", action=argparse.BooleanOptionalAction, default=None,
                        help="clean every crop with the CycleGAN generator before verifying it "
                             "(default: as the shipped cleaner's model card says: on once cleaning improves "
                             "verification on validation writers)")
    parser.add_argument("--cleaner_weights", default=None, metavar="PATH",
                        help="CycleGAN generator weights; default: the shipped "
                             "models/weights/cyclegan_default.safetensors")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="where models run: auto = CUDA when present, else CPU")
    parser.add_argument("--weights", default=None, metavar="PATH",
                        help="SigNet weights (.safetensors with its .json model card beside it); "
                             "default: the shipped models/weights/signet_default.safetensors")
    parser.add_argument("--batch_size", type=int, default=DEFAULT_BATCH_SIZE,
                        help="largest model batch (RunInference batches up to this size)")
    parser.add_argument("--model_threads", type=int, default=0,
                        help="torch threads per worker process for model inference; 0 = torch's default, "
                             "except that a local --direct_running_mode=multi_processing run shares the "
                             "machine's cores among its --direct_num_workers")
    parser.add_argument("--demo_seed", type=int, default=0, help="seed of the built-in demo corpus")
    parser.add_argument("--skip_processed", action="store_true",
                        help="skip files whose document_id an earlier run_date's documents report shows "
                             "processed ok with the same model versions (they get a 'skipped' row)")
    parser.add_argument("--review", action=argparse.BooleanOptionalAction, default=True,
                        help="after a successful run, write the auditor's static review page "
                             "OUTPUT/review/run_date=YYYY-MM-DD/index.html (it embeds every crop and page "
                             "thumbnail: --no-review skips it for very large runs)")
    return parser


def parse_args(argv: Sequence[str] | None) -> tuple[AuditConfig, list[str]]:
    """Split ``argv`` into our config and the remaining Beam pipeline arguments."""
    known, beam_args = build_parser().parse_known_args(list(argv) if argv is not None else None)
    values = vars(known)
    values["inputs"] = tuple(values["inputs"])
    return AuditConfig(**values), beam_args
