# syntax=docker/dockerfile:1
# One image for the four services: the `hm3` command, started as `hm3 serve <service>` (the
# Deployments in k8s/ pass the service as the container's arguments). Two final targets:
#   docker build -t hm3:0.1.0 .                              CPU (the default, last stage `cpu`)
#   docker build --target gpu -t hm3:0.1.0-cuda12 .          tensor-merge on CUDA nodes
# Both run as the non-root user 10001 with production dependencies only.

# Node 20, the version the workspace pins (package.json engines).
ARG NODE_IMAGE=node:20.19.5-bookworm-slim
# Must equal the installed onnxruntime-node version (a test in tools/deploy-check checks it): the
# CUDA provider libraries come from the onnxruntime-gpu wheel of the same version.
ARG ORT_VERSION=1.23.2
# onnxruntime-gpu 1.23 on PyPI is built for CUDA 12.x with cuDNN 9: this runtime image carries
# cudart, cuBLAS, cuFFT, cuRAND and cuDNN 9 of CUDA 12.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# --- build: install everything, compile the CLI and the packages it imports, then drop dev deps.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
ENV NX_DAEMON=false NX_NO_CLOUD=true
COPY . .
RUN npm ci --no-audit --no-fund \
 && npx nx build @hm3/cli --outputStyle=static \
 && npm prune --omit=dev --no-audit --no-fund
# Only what runs: each workspace package's package.json, dist/ and bin/, and node_modules.
RUN mkdir -p /out \
 && cp package.json /out/ \
 && cp -R node_modules /out/node_modules \
 && for dir in libs/* services/* tools/*; do \
      if [ ! -f "$dir/package.json" ]; then continue; fi; \
      mkdir -p "/out/$dir" && cp "$dir/package.json" "/out/$dir/"; \
      for part in dist bin; do if [ -d "$dir/$part" ]; then cp -R "$dir/$part" "/out/$dir/"; fi; done; \
    done

# --- ort-cuda: onnxruntime's CUDA execution provider libraries, from the onnxruntime-gpu wheel.
FROM python:3.12-slim AS ort-cuda
ARG ORT_VERSION
RUN pip download --no-cache-dir --no-deps --only-binary=:all: --dest /wheels "onnxruntime-gpu==${ORT_VERSION}" \
 && python -m zipfile -e /wheels/onnxruntime_gpu-*.whl /ort \
 && mkdir /providers \
 && cp /ort/onnxruntime/capi/libonnxruntime_providers_shared.so /ort/onnxruntime/capi/libonnxruntime_providers_cuda.so /providers/

# --- gpu: the CUDA runtime, Node 20 from the official image, the app, and the provider libraries
# beside onnxruntime-node's binding (where services/tensor-merge/src/device.ts looks for them).
FROM ${NODE_IMAGE} AS node
FROM ${CUDA_IMAGE} AS gpu
ENV NODE_ENV=production
COPY --from=node /usr/local/bin/node /usr/local/bin/node
RUN groupadd --system --gid 10001 hm3 \
 && useradd --system --uid 10001 --gid hm3 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin hm3
WORKDIR /app
COPY --from=build /out/ /app/
COPY --from=ort-cuda /providers/ /app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/
COPY k8s/image/health-probe.mjs /app/health-probe.mjs
USER 10001:10001
ENTRYPOINT ["node", "/app/tools/cli/bin/hm3.js"]
CMD ["--help"]

# --- cpu (default): Node 20 slim, the app, nothing else.
FROM ${NODE_IMAGE} AS cpu
ENV NODE_ENV=production
RUN groupadd --system --gid 10001 hm3 \
 && useradd --system --uid 10001 --gid hm3 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin hm3
WORKDIR /app
COPY --from=build /out/ /app/
COPY k8s/image/health-probe.mjs /app/health-probe.mjs
USER 10001:10001
ENTRYPOINT ["node", "/app/tools/cli/bin/hm3.js"]
CMD ["--help"]
