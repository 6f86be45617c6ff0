#!/usr/bin/env bash
# ZooKeeper for the RPC tests and local runs.
#
#   bash scripts/zookeeper.sh install          installs Debian's `zookeeper` package if missing (idempotent, quiet)
#   bash scripts/zookeeper.sh classpath        prints the java class path of the installed server
#   bash scripts/zookeeper.sh start PORT DIR [TICK_MS]
#                                              runs a private standalone server in the foreground
#                                              (exec: the caller's pid is the JVM's, so signals reach it);
#                                              sessions may last 2..20 ticks (default tick 2000 ms)
#   bash scripts/zookeeper.sh member ID DIR SERVERS [TICK_MS]
#                                              runs server ID (1-based) of an ensemble in the foreground:
#                                              SERVERS lists every member as CLIENT_PORT:QUORUM_PORT:ELECTION_PORT,
#                                              comma-separated, in id order (all on 127.0.0.1); it writes
#                                              DIR/zoo.cfg and DIR/data/myid and keeps its data in DIR/data
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

# The JVM flags of every server: small heap, quick start, quiet.
jvm_flags=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto
  -Dzookeeper.jmx.log4j.disable=true -Dlog4j.configuration=file:/dev/null -Dzookeeper.root.logger=WARN,CONSOLE)

member() {
  local id="${1:?usage: zookeeper.sh member ID DIR SERVERS [TICK_MS]}"
  local dir="${2:?usage: zookeeper.sh member ID DIR SERVERS [TICK_MS]}"
  local servers="${3:?usage: zookeeper.sh member ID DIR SERVERS [TICK_MS]}"
  local tick="${4:-2000}"
  if need_install; then
    echo "zookeeper.sh: ZooKeeper is not installed; run: bash scripts/zookeeper.sh install" >&2
    exit 1
  fi
  mkdir -p "$dir/data"
  echo "$id" >"$dir/data/myid"
  local cfg="$dir/zoo.cfg" n=0 client_port=""
  {
    echo "tickTime=$tick"
    echo "initLimit=10"
    echo "syncLimit=5"
    echo "dataDir=$dir/data"
    echo "clientPortAddress=127.0.0.1"
    echo "maxClientCnxns=0"
    echo "admin.enableServer=false"
    echo "4lw.commands.whitelist=*"
    # A member alone must not serve: that is what the ensemble is for.
    echo "standaloneEnabled=false"
    IFS=',' read -ra members <<<"$servers"
    for member in "${members[@]}"; do
      n=$((n + 1))
      IFS=':' read -r cport qport eport <<<"$member"
      echo "server.$n=127.0.0.1:$qport:$eport"
      [ "$n" = "$id" ] && client_port="$cport"
    done
    echo "clientPort=$client_port"
  } >"$cfg"
  if [ -z "$client_port" ]; then
    echo "zookeeper.sh: member $id is not in SERVERS ($servers)" >&2
    exit 2
  fi
  exec java "${jvm_flags[@]}" -cp "$(classpath)" org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg"
}

case "${1:-}" in
  install) install ;;
  classpath) classpath ;;
  start)
    shift
    start "$@"
    ;;
  member)
    shift
    member "$@"
    ;;
  *)
    echo "usage: zookeeper.sh install | classpath | start PORT DIR [TICK_MS] | member ID DIR SERVERS [TICK_MS]" >&2
    exit 2
    ;;
esac
