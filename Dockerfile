# Two images from one file: the API (no torch, small, fast to start) and the GPU worker.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/sculpt
COPY pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations
COPY worker ./worker

FROM base AS api
RUN pip install .
EXPOSE 8000
CMD ["sculpt", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]

FROM base AS worker
# Override for another CUDA build: docker build --build-arg TORCH_SPEC=... --target worker .
ARG TORCH_SPEC="torch==2.13.0"
RUN pip install "${TORCH_SPEC}" && pip install ".[worker,real]"
CMD ["sculpt", "worker", "--queues", "default"]
