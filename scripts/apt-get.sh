#!/bin/bash
# apt-get ARGS..., waiting while another apt or dpkg holds its lock.
#
#   bash scripts/apt-get.sh update
#   bash scripts/apt-get.sh install -y --no-install-recommends PACKAGE...
#
# A new Debian machine often runs apt's daily jobs right after boot, and apt
# 2.6's DPkg::Lock::Timeout does not cover `apt-get update`'s lists lock: a
# plain apt-get then fails at once. This retries (every 5 s, 10 minutes at
# most) only when the failure is a held lock; any other failure is final.
set -uo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
deadline=$((SECONDS + 600))
while true; do
    err=$(mktemp)
    $sudo apt-get -o DPkg::Lock::Timeout=600 "$@" 2> >(tee "$err" >&2)
    rc=$?
    wait  # for tee
    if [ "$rc" -eq 0 ]; then rm -f "$err"; exit 0; fi
    if ! grep -q -e 'Could not get lock' -e 'Unable to lock' "$err" || [ "$SECONDS" -ge "$deadline" ]; then
        rm -f "$err"
        exit "$rc"
    fi
    rm -f "$err"
    echo "apt-get.sh: apt is busy (another apt or dpkg holds its lock); retrying in 5 s" >&2
    sleep 5
done
