#!/usr/bin/env bash
# ZooKeeper for the RPC tests and local runs.
#
#   bash scripts/zookeeper.sh install          installs Debian's `zookeeper` package if missing (idempotent, quiet)
#   bash scripts/zookeeper.sh classpath        prints the java class path of the installed server
#   bash scripts/zookeeper.sh start PORT DIR [TICK_MS]
#                                              runs a private standalone server in the foreground
#                                              (exec: the caller's pid is the JVM's, so signals reach it);
#                                              sessions may last 2..20 ticks (default tick 2000 ms)
#
# The package only provides the jars; nothing here touches the system service (/etc/init.d).
set -euo pipefail

need_install() {
  # The server class lives in zookeeper.jar; the package puts it under /usr/share/java.
  ! compgen -G '/usr/share/java/zookeeper*.jar' >/dev/null && ! compgen -G '/usr/share/zookeeper/*.jar' >/dev/null
}

install() {
  if ! need_install && command -v java >/dev/null; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "zookeeper.sh: the zookeeper package is missing; run as root: bash scripts/zookeeper.sh install" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be absent on a fresh machine; try once without updating first.
  if ! apt-get install -y -qq --no-install-recommends zookeeper >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends zookeeper >/dev/null
  fi
  # The package enables a system service on some setups; the tests run their own servers.
  if command -v service >/dev/null && [ -x /etc/init.d/zookeeper ]; then
    service zookeeper stop >/dev/null 2>&1 || true
  fi
}

classpath() {
  # Debian's zookeeper.jar lists its dependencies in its manifest; slf4j-nop keeps the server quiet
  # (the wildcard would put six competing slf4j bindings on the path).
  if [ -f /usr/share/java/zookeeper.jar ]; then
    local cp="/usr/share/java/zookeeper.jar"
    [ -f /usr/share/java/slf4j-nop.jar ] && cp="$cp:/usr/share/java/slf4j-nop.jar"
    echo "$cp:/etc/zookeeper/conf"
  else
    echo "/usr/share/java/*:/usr/share/zookeeper/*:/etc/zookeeper/conf"
  fi
}

start() {
  local port="${1:?usage: zookeeper.sh start PORT DIR}"
  local dir="${2:?usage: zookeeper.sh start PORT DIR}"
  local tick="${3:-2000}"
  if need_install; then
    echo "zookeeper.sh: ZooKeeper is not installed; run: bash scripts/zookeeper.sh install" >&2
    exit 1
  fi
  mkdir -p "$dir"
  # Small heap, quick start; admin server off so it does not take port 8080; no cap on
  # connections per client address (the default 60 is easy to reach from one test machine).
  exec java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Dzookeeper.admin.enableServer=false -Dzookeeper.4lw.commands.whitelist='*' \
    -Dzookeeper.jmx.log4j.disable=true -Dlog4j.configuration=file:/dev/null \
    -Dzookeeper.root.logger=WARN,CONSOLE \
    -cp "$(classpath)" org.apache.zookeeper.server.ZooKeeperServerMain "$port" "$dir" "$tick" 0
}

case "${1:-}" in
  install) install ;;
  classpath) classpath ;;
  start)
    shift
    start "$@"
    ;;
  *)
    echo "usage: zookeeper.sh install | classpath | start PORT DIR [TICK_MS]" >&2
    exit 2
    ;;
esac
