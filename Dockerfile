# syntax=docker/dockerfile:1
# Build: a static, stripped binary with its version stamped.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/image-pin-webhook ./cmd/webhook

# Runtime: /bin/sh and the AWS CLI (Alpine's aws-cli), as Argo CD Image
# Updater's image has them, so ext: login scripts such as the ECR example
# of its registries guide run as written. The aws credential kind needs
# neither; a slim image without the CLI (about 100 MB smaller):
#   docker build --build-arg SLIM=1 .
# EXTRA_PACKAGES adds Alpine packages (space-separated) to either.
FROM alpine:3.22
ARG SLIM=""
ARG EXTRA_PACKAGES=""
RUN apk add --no-cache ca-certificates $([ -n "${SLIM}" ] || echo aws-cli) ${EXTRA_PACKAGES} \
 && adduser -D -H -u 65532 -s /sbin/nologin image-pin
COPY --from=build /out/image-pin-webhook /usr/local/bin/image-pin-webhook
USER 65532:65532
ENV HOME=/tmp
ENTRYPOINT ["/usr/local/bin/image-pin-webhook"]
