#!/usr/bin/env bash
# Regenerates agent/pb from agent/proto/agent.proto. Called by `make proto`
# from the repository root (it also works from anywhere: paths are taken
# relative to this script).
#
# The protoc plugins are go-installed at pinned versions into ./bin/tools so
# the generated code does not depend on what happens to be in ~/go/bin.
# protoc itself comes from the protobuf-compiler package.
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.11
PROTOC_GEN_GO_TTRPC_VERSION=v1.2.10

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
tools="$root/bin/tools"

command -v protoc >/dev/null || {
	echo "gen.sh: protoc not found (apt-get install protobuf-compiler)" >&2
	exit 1
}

mkdir -p "$tools"
# Both plugins are installed in module mode at their own pinned versions,
# independent of this module's go.mod.
install_tool() { # name pkg@version
	local name=$1 pkgver=$2 stamp="$tools/.$1.version"
	if [[ -x "$tools/$name" && "$(cat "$stamp" 2>/dev/null)" == "$pkgver" ]]; then
		return
	fi
	echo "gen.sh: installing $pkgver"
	GOBIN="$tools" GOFLAGS= go install "$pkgver"
	echo "$pkgver" >"$stamp"
}
install_tool protoc-gen-go "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
install_tool protoc-gen-go-ttrpc "github.com/containerd/ttrpc/cmd/protoc-gen-go-ttrpc@$PROTOC_GEN_GO_TTRPC_VERSION"

cd "$here"
PATH="$tools:$PATH" protoc \
	--proto_path=. \
	--go_out=../pb --go_opt=paths=source_relative \
	--go-ttrpc_out=../pb --go-ttrpc_opt=paths=source_relative \
	agent.proto
echo "gen.sh: wrote agent/pb"
