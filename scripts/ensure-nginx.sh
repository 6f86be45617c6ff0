#!/usr/bin/env bash
# Installs Nginx with the stream (TCP) module from Debian's packages when it is missing.
# Idempotent and quiet when everything is already there. Needs root (apt-get).
set -euo pipefail
module=/usr/lib/nginx/modules/ngx_stream_module.so
if command -v nginx >/dev/null 2>&1 && { [ -f "$module" ] || nginx -V 2>&1 | grep -q -- '--with-stream[^=]'; }; then
  exit 0
fi
echo "ensure-nginx: installing nginx and libnginx-mod-stream" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends nginx libnginx-mod-stream >/dev/null
# The package may start a system-wide nginx on port 80; the project only uses private instances.
if command -v nginx >/dev/null 2>&1 && [ -f /run/nginx.pid ]; then nginx -s quit 2>/dev/null || true; fi
command -v nginx >/dev/null
