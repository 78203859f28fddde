"""The Dataflow path, offline: the graph builds with Dataflow-style options, and packaging ships everything."""
from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.audit import build_audit
from pipeline.options import AuditConfig
from pipeline.runner import make_runner

REPO = Path(__file__).resolve().parents[1]
DATAFLOW_ARGS = [
    "--runner=DataflowRunner", "--project=sigaudit-demo", "--region=us-central1",
    "--temp_location=gs://sigaudit-demo-bucket/tmp", "--staging_location=gs://sigaudit-demo-bucket/staging",
    "--setup_file=./setup.py", "--experiments=use_runner_v2",
    "--sdk_container_image=us-docker.pkg.dev/sigaudit-demo/sigaudit/worker:latest",
    "--dataflow_service_options=worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver",
    "--machine_type=g2-standard-4",
]


def test_graph_builds_with_dataflow_options_offline():
    options = PipelineOptions(DATAFLOW_ARGS)
    assert make_runner(options) is None  # Beam resolves the DataflowRunner itself
    p = beam.Pipeline(options=options)
    config = AuditConfig(inputs=("gs://sigaudit-demo-bucket/contracts/*.pdf",),
                         references="gs://sigaudit-demo-bucket/references",
                         output="gs://sigaudit-demo-bucket/reports", device="auto")
    build_audit(p, config, {"a.pdf": ("alice",)})
    proto = p.to_runner_api()  # pickles every DoFn and model handler, as a submission would
    names = {t.unique_name for t in proto.components.transforms.values()}
    for stage in ("ReadDocuments", "RenderPages", "FindSignatures", "EnrollReferences", "Verify", "WriteReports"):
        assert stage in names
    assert any(n.startswith("Verify/Embed") for n in names)
    for table in ("Documents", "Signatures", "Matches", "Errors"):
        assert any(n.startswith(f"WriteReports/Write{table}") for n in names), table


@pytest.mark.skipif(sys.platform == "win32", reason="sdist check uses POSIX paths")
def test_setup_file_ships_packages_and_weights(tmp_path):
    """What Dataflow's --setup_file does on launch: build an sdist of the project."""
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path)], cwd=REPO, check=True,
                   capture_output=True)
    (archive,) = tmp_path.glob("sigaudit-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for module in ("run_pipeline.py", "pipeline/audit.py", "pipeline/inference.py", "models/signet.py",
                   "transforms/pdf.py", "transforms/preprocess.py"):
        assert module in names, module
    for weights in (REPO / "models" / "weights").glob("*.safetensors"):
        assert f"models/weights/{weights.name}" in names
        assert f"models/weights/{weights.stem}.json" in names


def test_dockerfile_matches_the_beam_sdk_and_python():
    text = (REPO / "Dockerfile").read_text()
    sdk = re.search(r"apache/beam_python(\d+\.\d+)_sdk:(\S+)", text)
    assert sdk, "the Dockerfile must copy the Beam SDK boot from apache/beam_pythonX.Y_sdk"
    assert sdk.group(2) == beam.__version__
    assert f'"apache-beam[gcp]=={beam.__version__}"' in text
    assert 'ENTRYPOINT ["/opt/apache/beam/boot"]' in text
