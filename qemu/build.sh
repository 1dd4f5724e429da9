#!/bin/bash
# Build QEMU 10.0.x with machinedesc's patch series into a cache keyed by the series.
#
# Usage: qemu/build.sh [--source DIR|TARBALL] [--print-prefix] [--jobs N]
#   --source DIR|TARBALL  QEMU 10.0.x source tree or release tarball to build.
#                         Default: Debian's source package from bookworm-backports
#                         (`apt-get source qemu`; run qemu/install-build-deps.sh once
#                         to enable the deb-src entry and install the tools).
#   --print-prefix        print the install prefix (<cache>/<key>) and exit: no
#                         build, no network, no side effect.
#   --jobs N              parallel build jobs (default: 2).
#
# Cache: ${MACHINEDESC_QEMU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/machinedesc/qemu}
#   <cache>/<key>/bin/qemu-system-{riscv64,aarch64}   installed binaries
#   <cache>/work/<key>/{src,build}                     patched source and build tree
#   <cache>/downloads/                                 source package files
# <key> hashes the patch files (in series order), this script's configuration
# block and the QEMU source version. A second run with the same key only
# prints the paths.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
patches_dir="$here/patches"

# ---- configuration (part of the cache key) -------------------------------
QEMU_VERSION_DEFAULT=10.0.2
TARGETS=riscv64-softmmu,aarch64-softmmu
CONFIGURE_ARGS=(
    --target-list="$TARGETS"
    --without-default-features
    --enable-fdt=system
    --enable-tcg
    --disable-docs
    --disable-tools
    --disable-user
    --disable-werror
    --disable-debug-info
    --disable-install-blobs
)
# ---- end of configuration --------------------------------------------------

source_arg=""
print_prefix=0
jobs=2
while [ $# -gt 0 ]; do
    case "$1" in
    --source) source_arg=${2:?--source needs a directory or tarball}; shift 2 ;;
    --source=*) source_arg=${1#--source=}; shift ;;
    --print-prefix) print_prefix=1; shift ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
    --jobs=*) jobs=${1#--jobs=}; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

cache=${MACHINEDESC_QEMU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/machinedesc/qemu}

# Version of the source we are going to build (cheap: no extraction).
source_version() {
    if [ -z "$source_arg" ]; then
        echo "$QEMU_VERSION_DEFAULT"
    elif [ -d "$source_arg" ]; then
        tr -d '[:space:]' < "$source_arg/VERSION"
    else
        # qemu-10.0.2.tar.xz or Debian's qemu_10.0.2+ds.orig.tar.xz
        basename "$source_arg" | sed -E 's/^qemu[-_]([0-9][0-9.]*[0-9]).*/\1/'
    fi
}

series_files() {
    [ -f "$patches_dir/series" ] || return 0
    grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$patches_dir/series"
}

compute_key() {
    {
        echo "version $(source_version)"
        # The configuration block of this script.
        sed -n '/^# ---- configuration/,/^# ---- end of configuration/p' "$0"
        series_files | while read -r p; do
            echo "patch $p"
            cat "$patches_dir/$p"
        done
    } | sha256sum | cut -c1-16
}

version=$(source_version)
key="$version-$(compute_key)"
prefix="$cache/$key"

if [ "$print_prefix" = 1 ]; then
    echo "$prefix"
    exit 0
fi

bins=("$prefix/bin/qemu-system-riscv64" "$prefix/bin/qemu-system-aarch64")
if [ -x "${bins[0]}" ] && [ -x "${bins[1]}" ]; then
    echo "build.sh: already built (key $key)"
    printf '%s\n' "${bins[@]}"
    exit 0
fi

case "$version" in
10.0.*) ;;
*) echo "build.sh: the series is for QEMU 10.0.x, got '$version'" >&2; exit 1 ;;
esac

start=$(date +%s)
work="$cache/work/$key"
src="$work/src"
build="$work/build"
mkdir -p "$work" "$cache/downloads"

# One build per key at a time; a second caller waits, then finds it built.
exec 9>"$work.lock"
flock 9
if [ -x "${bins[0]}" ] && [ -x "${bins[1]}" ]; then
    echo "build.sh: already built (key $key)"
    printf '%s\n' "${bins[@]}"
    exit 0
fi

# ---- 1. source tree ---------------------------------------------------------
fetch_debian_source() {
    local dl="$cache/downloads"
    (
        cd "$dl"
        # The .dsc and Debian patches are applied when the mirror has them;
        # the orig tarball alone builds too (see README).
        if ! ls qemu_"$QEMU_VERSION_DEFAULT"*.dsc >/dev/null 2>&1 \
            && ! ls qemu_"$QEMU_VERSION_DEFAULT"*.orig.tar.* >/dev/null 2>&1; then
            apt-get source --download-only qemu/bookworm-backports >&2 || true
        fi
    )
    local dsc orig
    dsc=$(ls "$dl"/qemu_"$QEMU_VERSION_DEFAULT"*.dsc 2>/dev/null | head -n1 || true)
    orig=$(ls "$dl"/qemu_"$QEMU_VERSION_DEFAULT"*.orig.tar.* 2>/dev/null | head -n1 || true)
    if [ -n "$dsc" ] && [ -n "$(ls "$dl"/qemu_*.debian.tar.* 2>/dev/null)" ]; then
        echo "build.sh: unpacking $dsc with Debian's patches" >&2
        rm -rf "$src.tmp"
        dpkg-source --no-check -x "$dsc" "$src.tmp" >&2
        mv "$src.tmp" "$src"
    elif [ -n "$orig" ]; then
        echo "build.sh: unpacking $orig (no .dsc on the mirror)" >&2
        unpack_tarball "$orig"
    else
        echo "build.sh: could not fetch QEMU source; run qemu/install-build-deps.sh" \
             "or pass --source" >&2
        exit 1
    fi
}

unpack_tarball() {
    rm -rf "$src.tmp"
    mkdir -p "$src.tmp"
    tar -xf "$1" -C "$src.tmp" --strip-components=1
    mv "$src.tmp" "$src"
}

if [ ! -f "$work/.patched" ]; then
    rm -rf "$src" "$build"
    if [ -z "$source_arg" ]; then
        fetch_debian_source
    elif [ -d "$source_arg" ]; then
        cp -a "$source_arg" "$src"
    else
        unpack_tarball "$source_arg"
    fi
    # Debian's +ds tarball drops the edk2 firmware blobs that meson would
    # unpack for arm/riscv targets; skip them when they are absent.
    if [ ! -e "$src/pc-bios/edk2-aarch64-code.fd.bz2" ]; then
        sed -i "s|unpack_edk2_blobs = bzip2.found()\$|unpack_edk2_blobs = bzip2.found() and fs.exists('pc-bios/edk2-aarch64-code.fd.bz2')|" \
            "$src/meson.build"
    fi
    # ---- 2. patch series ------------------------------------------------------
    series_files | while read -r p; do
        echo "build.sh: applying $p"
        patch -d "$src" -p1 --forward --batch --quiet < "$patches_dir/$p"
    done
    touch "$work/.patched"
fi

# ---- 3. configure and build -------------------------------------------------
if [ ! -f "$build/build.ninja" ]; then
    # configure takes meson (>= 1.5) and pycotap from the python3 on PATH:
    # scripts/install.sh puts the project's .venv (requirements/lock.txt) first.
    if ! python3 -c 'import mesonbuild, pycotap' 2>/dev/null; then
        echo "build.sh: $(command -v python3) lacks meson or pycotap; run scripts/install.sh," \
             "or put a python with them first on PATH (e.g. . .venv/bin/activate)" >&2
        exit 1
    fi
    mkdir -p "$build"
    (cd "$build" && "$src/configure" --prefix="$prefix" "${CONFIGURE_ARGS[@]}")
fi
# Build only the two emulators (`ninja install` would build every default
# target, a third more work), then install them by hand.
ninja -C "$build" -j "$jobs" qemu-system-riscv64 qemu-system-aarch64
mkdir -p "$prefix/bin"
for sys in riscv64 aarch64; do
    install -m 0755 "$build/qemu-system-$sys" "$prefix/bin/qemu-system-$sys.tmp"
    mv "$prefix/bin/qemu-system-$sys.tmp" "$prefix/bin/qemu-system-$sys"
done

end=$(date +%s)
echo "build.sh: built QEMU $version (key $key) in $((end - start)) s"
printf '%s\n' "${bins[@]}"
