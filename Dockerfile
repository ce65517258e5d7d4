# syntax=docker/dockerfile:1
# Build: a static, stripped binary with its version stamped.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/image-pin-webhook ./cmd/webhook

# Runtime: /bin/sh for ext: login scripts. The AWS CLI is no longer in the
# default image: the aws: credential kind logs in to ECR without it. ext:
# scripts that call it (the ECR example of Argo CD Image Updater's docs) need
#   docker build --build-arg EXTRA_PACKAGES=aws-cli .
# (any Alpine packages, space-separated; see docs/install.md).
FROM alpine:3.22
ARG EXTRA_PACKAGES=""
RUN apk add --no-cache ca-certificates ${EXTRA_PACKAGES} \
 && adduser -D -H -u 65532 -s /sbin/nologin image-pin
COPY --from=build /out/image-pin-webhook /usr/local/bin/image-pin-webhook
USER 65532:65532
ENV HOME=/tmp
ENTRYPOINT ["/usr/local/bin/image-pin-webhook"]
