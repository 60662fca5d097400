# Inmate container image: a release build on a slim Debian runtime.
#   docker build -t inmate .
#   docker run -p 8080:8080 -v "$PWD/config.yaml:/etc/inmate/config.yaml:ro" inmate

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin inmate \
    && mkdir -p /data /etc/inmate \
    && chown inmate:inmate /data
COPY --from=builder /src/target/release/inmate /usr/local/bin/inmate
# The default config expects the compose hostnames; mount your own over it.
COPY docker/config.yaml /etc/inmate/config.yaml
USER inmate
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["inmate"]
CMD ["--config", "/etc/inmate/config.yaml"]
