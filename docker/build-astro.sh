#!/bin/sh
# Build the static astro binary for the ClickHouse server image and install it into
# $ASTRO_OUT_DIR (the repository's user_scripts/, mounted by docker-compose.yml).
#
# Runs in rust:1-alpine (the "builder" service): the host triple there is
# <arch>-unknown-linux-musl, so the binary links statically against musl and runs in the
# Ubuntu-based server image whatever its glibc. TLS is rustls with aws-lc-rs: aws-lc-sys builds
# AWS-LC from source with its cc-crate builder (no CMake, Go or Perl; bindings for the musl
# targets are pre-generated, so no clang/bindgen either). It needs a C compiler, the musl
# headers and, for crypto/rand_extra/urandom.c, <linux/random.h> from linux-headers.
set -eu

out_dir=${ASTRO_OUT_DIR:-/out}
src_dir=${ASTRO_SRC_DIR:-/src}

need=""
for pkg in gcc musl-dev linux-headers; do
    apk info -e "$pkg" >/dev/null 2>&1 || need="$need $pkg"
done
if [ -n "$need" ]; then
    echo "build-astro: installing$need"
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    apk add --no-cache $need
fi

target=${ASTRO_TARGET:-$(rustc -vV | sed -n 's/^host: //p')}
case "$target" in
    *-linux-musl) ;;
    *)
        echo "build-astro: target '$target' is not a musl target; the server needs a static binary" >&2
        exit 1
        ;;
esac

cd "$src_dir"
echo "build-astro: cargo build --release --locked --target $target"
cargo build --release --locked --target "$target"

target_dir=${CARGO_TARGET_DIR:-$src_dir/target}
bin="$target_dir/$target/release/astro"

# A static(-pie) executable has no program interpreter and no shared-library dependencies.
if readelf -lW "$bin" | grep -q 'program interpreter' || readelf -dW "$bin" | grep -q '(NEEDED)'; then
    echo "build-astro: $bin is dynamically linked; refusing to install it for the server" >&2
    readelf -dW "$bin" | grep '(NEEDED)' >&2 || true
    exit 1
fi
"$bin" --help >/dev/null

# Install atomically (the server may be running the old binary: a rename never hits
# "text file busy"), owned like the output directory, i.e. by the host user, not root.
tmp="$out_dir/.astro.tmp.$$"
trap 'rm -f "$tmp"' EXIT
cp "$bin" "$tmp"
chmod 0755 "$tmp"
chown "$(stat -c '%u:%g' "$out_dir")" "$tmp" 2>/dev/null || true
mv -f "$tmp" "$out_dir/astro"
trap - EXIT
echo "build-astro: installed $out_dir/astro ($target, static)"
