# Custom Dataflow worker for sigaudit on GPUs (Runner v2): a CUDA PyTorch base plus the matching Beam
# SDK boot. Build and push, then run with --sdk_container_image (see README, "Scale out on Dataflow").
# The Python minor version of the base image (3.11) must match the launching environment's.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

# The Beam SDK harness entrypoint, from the Beam image of the same version as the pipeline's SDK.
COPY --from=apache/beam_python3.11_sdk:2.78.0 /opt/apache/beam /opt/apache/beam

WORKDIR /opt/sigaudit
COPY setup.py pyproject.toml README.md run_pipeline.py ./
COPY pipeline ./pipeline
COPY models ./models
COPY transforms ./transforms
# torch is already in the base image (CUDA build), so only the rest is installed.
RUN pip install --no-cache-dir "apache-beam[gcp]==2.78.0" . && python -c "import pipeline, models, transforms"

ENTRYPOINT ["/opt/apache/beam/boot"]
