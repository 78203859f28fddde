"""Packaging for sigaudit.

Dataflow ships the project to its workers with ``--setup_file ./setup.py``: the three packages below
and the model weights (package data of ``models``) travel that way.
"""
from setuptools import find_packages, setup

REQUIRED = [
    # One Beam release, the one the Dockerfile's worker boots (tests/test_dataflow.py checks that they agree):
    # a new minor release can change graph-time type checks (2.78 began to type CoGroupByKey's values).
    "apache-beam==2.78.0",
    # Beam 2.77-2.78 need pyarrow < 26.
    "pyarrow>=14,<26",
    # On a CPU machine install torch==2.13.0 first (a CPU wheel); a bare requirement would let pip
    # pick a multi-GB CUDA build. A range keeps GPU containers free to bring their own CUDA build.
    "torch>=2.2",
    "numpy>=1.24",
    # The figures in the model cards and the tests were made with OpenCV 5.0; on 4.12-4.14 three tests
    # fail (thresholds of the classical finder and the orientation contrast land elsewhere). 5.1 draws
    # cv2.putText with other glyphs: the synthetic document noise (stamps, printed text) and the test
    # pages change, a classical-finder test fails and the noisy-query figures move by a forgery or two.
    "opencv-python-headless>=5.0,<5.1",
    # The 1.2x line: pymupdf 2.0 pulls onnxruntime, networkx and pymupdf4llm (about 100 MB more per worker).
    "pymupdf>=1.26,<2",
    "safetensors>=0.4",
]

EXTRAS = {
    "test": ["pytest>=8", "duckdb>=1.0", "ruff>=0.5"],
    "gcp": ["apache-beam[gcp]==2.78.0"],
}

setup(
    name="sigaudit",
    version="0.1.0",
    description="Batch signature audit of signed PDF contracts on Apache Beam",
    python_requires=">=3.10",
    packages=find_packages(include=["pipeline", "pipeline.*", "models", "models.*", "transforms", "transforms.*"]),
    py_modules=["run_pipeline"],
    package_data={"models": ["weights/*.safetensors", "weights/*.json"]},
    include_package_data=True,
    install_requires=REQUIRED,
    extras_require=EXTRAS,
)
