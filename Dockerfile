# Anteroom's container image: the static binary and the CA certificates
# (for rediss:// and https origin health checks), nothing else. The binary
# is built outside the image, so that building needs no base image, no
# registry and no network:
#
#   mkdir -p dist
#   CGO_ENABLED=0 go build -trimpath -o dist/anteroom ./cmd/anteroom
#   cp /etc/ssl/certs/ca-certificates.crt dist/
#   podman build -t localhost/anteroom:dev .
#
# Run it with its configuration mounted and the secrets in the environment
# (the file refers to them as ${NAME}), on a read-only root filesystem:
#
#   podman run --read-only -p 8080:8080 -p 9090:9090 \
#     -v ./anteroom.yaml:/etc/anteroom/anteroom.yaml:ro \
#     -e ANTEROOM_COOKIE_KEY -e ANTEROOM_ADMIN_TOKEN localhost/anteroom:dev
#
# The configuration must listen on 0.0.0.0 (listen: 0.0.0.0:8080,
# ops.listen: 0.0.0.0:9090): the default, loopback, is unreachable from
# outside the container. deploy/container/anteroom.yaml is such a file.
FROM scratch
COPY dist/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY dist/anteroom /usr/local/bin/anteroom
# A numeric user, so that Kubernetes' runAsNonRoot can check it without an
# /etc/passwd: Anteroom needs no home, no shell and no name.
USER 65532:65532
# listen (visitors, relying parties) and ops.listen (probes, metrics,
# admin API): publish the first, keep the second private.
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/anteroom"]
CMD ["serve", "--config", "/etc/anteroom/anteroom.yaml"]
