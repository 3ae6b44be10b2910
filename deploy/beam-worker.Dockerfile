# Worker container for eigenscore-beam on Flink, Spark (environment_type=DOCKER) and Dataflow
# (sdk_container_image). NOT BUILT OR RUN IN CI: the development machines have no Docker daemon and
# no cluster, so this recipe is untested; see docs/beam.md. Build from the repository root:
#   docker build -f deploy/beam-worker.Dockerfile --build-arg DETECTOR=fm-detector.json \
#       -t REGISTRY/eigenscore-beam:VERSION .
# Beam's Go SDK image provides the boot program that starts the worker binary it is given
# (--worker_binary, the same eigenscore-beam binary that submits the job).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY . .
RUN cd beam && CGO_ENABLED=1 go build -trimpath -o /out/eigenscore-beam ./cmd/eigenscore-beam \
 && cd .. && EIGENSCORE_CACHE=/out/cache scripts/install-onnxruntime.sh

FROM apache/beam_go_sdk:2.77.0
COPY --from=build /out/eigenscore-beam /usr/local/bin/eigenscore-beam
COPY --from=build /out/cache/onnxruntime-1.30.0/libonnxruntime.so.1 /usr/local/lib/libonnxruntime.so.1
ENV ONNXRUNTIME_LIB=/usr/local/lib/libonnxruntime.so.1
# The detector (and an ONNX model it names, at the same path) must be readable on every worker:
# bake it in here, or mount it. Shipped models are embedded in the binary.
ARG DETECTOR=detector.json
COPY ${DETECTOR} /etc/eigenscore/detector.json
