# syntax=docker/dockerfile:1
# stampede's container image: built in the official Rust image, run from distroless (glibc and
# libgcc, no shell, no package manager) as a non-root user. stampede needs nothing else at run
# time (TLS roots are compiled in).
#
#   docker build -t stampede .            # or: podman build / buildah bud -t stampede .
#   docker run --rm stampede run -u http://host.docker.internal:8080/ -d 10s
#
# Kubernetes: deploy/kubernetes/ runs it as an Indexed Job.

FROM docker.io/library/rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target directory between builds (BuildKit, buildah).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin stampede \
    && cp target/release/stampede /usr/local/bin/stampede

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/stampede /usr/local/bin/stampede
# The uid the Kubernetes manifests run as (runAsNonRoot needs a numeric user).
USER 10001:10001
# The coordinator of a segmented run listens here (--coordinator-listen).
EXPOSE 7070
ENTRYPOINT ["/usr/local/bin/stampede"]
CMD ["--help"]
