#!/usr/bin/env bash
# envtest-assets.sh gets the binaries the end-to-end tests and the demo run
# (kube-apiserver, etcd, distribution's registry) and prints the directory to
# use as KUBEBUILDER_ASSETS.
#
# It first asks setup-envtest, as users with internet access do, with a short
# timeout; when that download is unreachable it builds the pinned versions from
# Go modules into bin/, only those that are missing. kube-controller-manager and
# kubectl (which setup-envtest does not ship) are always built, from the same
# k8s.io/kubernetes module as kube-apiserver, so that the server, its
# controllers and the client are one version. Cold, on 2 cores: kube-apiserver
# ~12 min, then kube-controller-manager and kubectl add a few minutes each as
# they share most packages with it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
source "$root/hack/versions.env"
bin="$root/bin"
assets="$bin/k8s"
mkdir -p "$assets"
log() { echo "envtest-assets: $*" >&2; }

have() { [ -x "$assets/kube-apiserver" ] && [ -x "$assets/etcd" ]; }

# hack/tools/*/go.mod must build the versions named above.
check() { # check <tools dir> <module> <version>
  grep -q "^[[:space:]]*$2 $3\b" "$root/hack/tools/$1/go.mod" && return
  grep -q "^require $2 $3\b" "$root/hack/tools/$1/go.mod" && return
  echo "envtest-assets: hack/tools/$1/go.mod does not require $2 $3 (hack/versions.env)" >&2
  exit 1
}
check kube-apiserver k8s.io/kubernetes "$KUBE_VERSION"
if [ "v$ENVTEST_K8S_VERSION" != "$KUBE_VERSION" ]; then
  echo "envtest-assets: ENVTEST_K8S_VERSION ($ENVTEST_K8S_VERSION) must be KUBE_VERSION ($KUBE_VERSION) without the v (hack/versions.env)" >&2
  exit 1
fi
check kube-apiserver k8s.io/api "=> k8s.io/api $KUBE_STAGING_VERSION"
check etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
check registry github.com/distribution/distribution/v3 "$REGISTRY_VERSION"

if ! have && [ "${SKIP_SETUP_ENVTEST:-}" != 1 ]; then
  if [ ! -x "$bin/setup-envtest" ]; then
    log "building setup-envtest"
    GOBIN="$bin" timeout 300 go install "sigs.k8s.io/controller-runtime/tools/setup-envtest@${SETUP_ENVTEST_VERSION}" >&2 2>&1 || true
  fi
  if [ -x "$bin/setup-envtest" ]; then
    log "trying setup-envtest use $ENVTEST_K8S_VERSION (20s)"
    if dir=$(timeout 20 "$bin/setup-envtest" use "$ENVTEST_K8S_VERSION" --bin-dir "$bin/setup-envtest-assets" -p path 2>/dev/null) && [ -x "$dir/kube-apiserver" ]; then
      ln -sf "$dir/kube-apiserver" "$assets/kube-apiserver"
      ln -sf "$dir/etcd" "$assets/etcd"
      if [ -x "$dir/kubectl" ]; then ln -sf "$dir/kubectl" "$assets/kubectl"; fi
    else
      log "setup-envtest download unreachable; building from Go modules"
    fi
  fi
fi

build() { # build <name> <tools dir> <package> [ldflags]
  local name=$1 dir=$2 pkg=$3 ldflags=${4:-}
  if [ -x "$assets/$name" ]; then return; fi
  log "building $name (cold builds take minutes)"
  (cd "$root/hack/tools/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$assets/$name.tmp" "$pkg")
  mv "$assets/$name.tmp" "$assets/$name"
}

vpkg=k8s.io/component-base/version
major=${KUBE_VERSION#v}; major=${major%%.*}
minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
kldflags="-X $vpkg.gitVersion=$KUBE_VERSION -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
build kube-apiserver kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kldflags"
build kube-controller-manager kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager "$kldflags"
build kubectl kube-apiserver k8s.io/kubernetes/cmd/kubectl "$kldflags"
build etcd etcd .
build registry registry github.com/distribution/distribution/v3/cmd/registry
echo "$assets"
