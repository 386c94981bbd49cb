#!/usr/bin/env bash
# Builds podlogd's image from the release binary, with buildah, FROM
# scratch: the binary and the shared libraries `ldd` names, nothing else.
#
# Usage: deploy/image/build.sh [IMAGE] [ARCHIVE]
#   IMAGE    the image name (default localhost/podlog/podlogd:<version>)
#   ARCHIVE  also write an OCI archive there, for `ctr images import`
# Environment:
#   PROFILE  the cargo profile whose binary goes in: release (default), or
#            dev (CI, which has built it already)
#
# Needs buildah (Debian: buildah) and a Rust toolchain.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

version=$(cargo pkgid -p podlog-agent | sed 's/.*[#@]//')
image=${1:-localhost/podlog/podlogd:$version}
archive=${2:-}

profile=${PROFILE:-release}
cargo build --profile "$profile" --locked --bin podlogd
bin=target/$([[ $profile == dev ]] && echo debug || echo "$profile")/podlogd
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/rootfs/usr/local/bin" "$stage/rootfs/tmp"
install -m 0755 "$bin" "$stage/rootfs/usr/local/bin/podlogd"
# Every shared library the binary loads, at the path it is loaded from.
ldd "$bin" | awk '/=> \// {print $3} /^[ \t]*\// {print $1}' | while read -r lib; do
    mkdir -p "$stage/rootfs$(dirname "$lib")"
    cp -L "$lib" "$stage/rootfs$lib"
done
cp deploy/image/Containerfile "$stage/Containerfile"
buildah bud --quiet --layers=false \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
    -t "$image" -f "$stage/Containerfile" "$stage"
if [[ -n "$archive" ]]; then
    rm -f "$archive"
    buildah push --quiet "$image" "oci-archive:$archive:$image"
fi
echo "$image"
