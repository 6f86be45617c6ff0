#!/usr/bin/env bash
# Everything `npm test` needs that is not an npm package: Nginx with the stream module and
# ZooKeeper's jars (installed with apt-get when missing), and the machine's MariaDB and Redis
# (started when they are down, with the same commands the machine uses at boot).
set -euo pipefail
cd "$(dirname "$0")/.."

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! up 6379 && command -v redis-server >/dev/null; then
  echo "test-setup: starting redis-server" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
if ! up 3306 && [ -x /usr/sbin/mariadbd ]; then
  echo "test-setup: starting mariadbd" >&2
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do up 3306 && break; sleep 0.5; done
fi

bash scripts/ensure-nginx.sh
bash scripts/zookeeper.sh install
