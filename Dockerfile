# The drplan image: the binary alone on a small, non-root base. The watcher
# (examples/watcher) and the scheduled drift check (docs/guide/workflows.md) run it.
#
#   docker build -t REGISTRY/drplan:0.1.0 .
#   docker push REGISTRY/drplan:0.1.0

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# --locked: exactly the dependency versions of Cargo.lock.
RUN cargo build --release --locked --bin drplan

# distroless "cc": glibc and libgcc, which the binary links, and nothing else: no shell,
# no package manager. Its `nonroot` user is uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/drplan /usr/local/bin/drplan
USER nonroot
ENTRYPOINT ["/usr/local/bin/drplan"]
