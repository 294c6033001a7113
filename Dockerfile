# Multi-stage build: compile hookgate in the Rust image, run it from a small Debian image as
# an unprivileged user.
#   docker build -t hookgate .
#   docker run --rm -p 8080:8080 -v $PWD/gateway.yaml:/etc/hookgate/gateway.yaml:ro \
#     -e GITHUB_WEBHOOK_SECRET=... hookgate
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin hookgate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin hookgate
COPY --from=build /src/target/release/hookgate /usr/local/bin/hookgate
USER 10001
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/hookgate"]
CMD ["run", "-c", "/etc/hookgate/gateway.yaml", "--log-format", "json"]
