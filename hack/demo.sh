#!/usr/bin/env bash
# demo.sh: everything `make demo` needs, then the demo itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
assets=$(./hack/envtest-assets.sh)
export KUBEBUILDER_ASSETS="$assets"
export IMAGE_PIN_WEBHOOK_BIN="$root/bin/image-pin-webhook"
go build -o bin/image-pin-demo ./hack/demo
exec bin/image-pin-demo
