#!/bin/sh
# As the official image: listen on every address of the container's network, no protected mode.
set -eu
[ "${1:-}" = "redis-server" ] && shift
exec redis-server --bind 0.0.0.0 --protected-mode no --dir /data "$@"
