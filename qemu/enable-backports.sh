#!/bin/bash
# Enable Debian bookworm-backports (QEMU 10.0.x lives there) as an apt source.
#
# Usage: qemu/enable-backports.sh [--src]
#   --src   also add a deb-src entry (needed by `apt-get source qemu`).
#
# The mirror URI is read from this machine's own apt configuration (deb822
# /etc/apt/sources.list.d/*.sources "URIs:" lines, or one-line
# /etc/apt/sources.list), so no host name is ever written in the repository.
# Idempotent: rewrites one file, /etc/apt/sources.list.d/machinedesc-backports.sources,
# and runs apt-get update.
set -euo pipefail

want_src=0
for arg in "$@"; do
    case "$arg" in
    --src) want_src=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "enable-backports.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

out=/etc/apt/sources.list.d/machinedesc-backports.sources

# Find the mirror that serves the main "bookworm" suite (not -security).
find_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        [ "$f" = "$out" ] && continue
        # deb822 stanzas are separated by blank lines.
        uri=$(awk 'BEGIN{RS=""; FS="\n"}
            {
                uris=""; suites=""
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
                    if ($i ~ /^Suites:/) { suites = $i; sub(/^Suites:[ \t]*/, "", suites) }
                }
                n = split(suites, s, /[ \t]+/)
                for (j = 1; j <= n; j++) {
                    if (s[j] == "bookworm") { split(uris, u, /[ \t]+/); print u[1]; exit }
                }
            }' "$f")
        if [ -n "$uri" ]; then echo "$uri"; return 0; fi
    done
    if [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" {
                i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == "bookworm") { print $i; exit }
            }' /etc/apt/sources.list)
        if [ -n "$uri" ]; then echo "$uri"; return 0; fi
    fi
    return 1
}

if ! mirror=$(find_mirror); then
    echo "enable-backports.sh: no apt source for suite 'bookworm' found in /etc/apt" >&2
    exit 1
fi

types="deb"
[ "$want_src" = 1 ] && types="deb deb-src"
# Keep deb-src if an earlier run enabled it.
if [ -f "$out" ] && grep -q '^Types:.*deb-src' "$out"; then
    types="deb deb-src"
fi

new=$(cat <<EOT
# Written by machinedesc qemu/enable-backports.sh (mirror taken from this machine's apt config)
Types: $types
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
)
if [ ! -f "$out" ] || [ "$(cat "$out")" != "$new" ]; then
    printf '%s\n' "$new" > "$out"
    echo "enable-backports.sh: wrote $out ($types)"
else
    echo "enable-backports.sh: $out already up to date"
fi
bash "$(dirname "$0")/../scripts/apt-get.sh" update -qq
