# syntax=docker/dockerfile:1
# kfp-exit-reconciler container image.
#
#   docker build -t ghcr.io/kfp-exit-reconciler/controller:0.1.0 \
#     --build-arg REVISION=$(git rev-parse --short=12 HEAD) .
#
# Stage 1 builds and tests with the same scripts CI runs (scripts/build.sh:
# install-deps.sh + CMake/Ninja with -Werror; then ctest). Stage 2 is
# debian:bookworm-slim with only the shared libraries the binaries link against.
# Two binaries, in one directory: exit-reconciler (the entrypoint; serves
# `audit` and links only audit's libraries, for a fast start) exec()s its
# sibling exit-reconciler-operator for `run` and `backfill`. The development
# sandbox and the API simulators are built in stage 1 (for ctest) but never
# copied: test/manifests/check_product_binaries.py checks that neither binary
# links any of their code.
# test/manifests/check_image_packages.py keeps RUNTIME_PACKAGES equal to what
# `ldd` of both binaries resolves to (dpkg -S), since no Docker daemon runs in CI.

FROM debian:bookworm AS build
ARG REVISION=unknown
WORKDIR /src
COPY . .
# The cmake arguments turn off the benchmarks (not part of the image) and stamp
# the git revision into exit_reconciler_build_info (.git is not copied).
RUN BUILD_DIR=/src/build EXITREC_WERROR=ON scripts/build.sh \
      -DEXITREC_BUILD_BENCH=OFF -DEXITREC_REVISION="${REVISION}" \
 && ctest --test-dir /src/build --output-on-failure -j "$(nproc)" --timeout 600 \
 && install -D -m 0755 -t /out /src/build/controller/exit-reconciler \
      /src/build/controller/exit-reconciler-operator \
 && strip --strip-unneeded /out/exit-reconciler /out/exit-reconciler-operator

FROM debian:bookworm-slim
# RUNTIME_PACKAGES: the Debian packages that own every library in
# `ldd exit-reconciler exit-reconciler-operator`, plus ca-certificates (HTTPS
# to the KFP API).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libbrotli1 \
      libc6 \
      libcpprest2.10 \
      libfmt9 \
      libgcc-s1 \
      libprometheus-cpp-core1.0 \
      libsimdjson14 \
      libspdlog1.10 \
      libssl3 \
      libstdc++6 \
      libyaml-cpp0.7 \
      libzstd1 \
      zlib1g \
 && rm -rf /var/lib/apt/lists/*
# The launcher finds the operator next to itself: keep them in one directory.
COPY --from=build /out/exit-reconciler /out/exit-reconciler-operator /usr/local/bin/
# Numeric user: the kubelet refuses a named user under runAsNonRoot.
USER 65532:65532
EXPOSE 8080 8081 9443
ENTRYPOINT ["/usr/local/bin/exit-reconciler"]
CMD ["--help"]
