# Sourced by the build, serve and test scripts: one build cache outside the clone, and the values
# Leptos reads at compile time (any other value would make cargo rebuild Leptos and our crates).
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strata-target}"
export LEPTOS_OUTPUT_NAME=strata LEPTOS_SITE_ROOT=target/site LEPTOS_SITE_PKG_DIR=pkg \
  LEPTOS_SITE_ADDR=127.0.0.1:3000 LEPTOS_RELOAD_PORT=3001 LEPTOS_LIB_DIR=frontend \
  LEPTOS_BIN_DIR=server LEPTOS_HASH_FILES=false LEPTOS_JS_MINIFY=false

# protoc generates the Spark Connect client's gRPC stubs when the server builds (the build script
# of apache-spark-connect-proto), so it must be there before cargo starts, not beside it: Debian's
# protobuf-compiler, installed once.
if ! command -v protoc >/dev/null 2>&1; then
  echo "[env] installing Debian's protobuf-compiler (protoc, for the Spark Connect stubs)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null
fi
