#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, for CronQ's cluster tests
# and the capacity benchmark: nodes cq1@localhost, cq2@localhost and
# cq3@localhost on AMQP ports 5681-5683 (distribution 25681-25683), each with
# its own data and log folder under $CRONQ_CLUSTER_DIR, no plugins (so they
# do not clash with the shared node's management port), clustered with the
# Erlang cookie of the user that runs this ($HOME/.erlang.cookie), which is
# also the one rabbitmqctl uses. The shared node on 5672 is never touched.
#
#   scripts/rabbitmq-cluster.sh start    start (or join) what is not running; idempotent
#   scripts/rabbitmq-cluster.sh stop     stop the three nodes and delete their data
#   scripts/rabbitmq-cluster.sh status   one line per node: name port running|stopped
#   scripts/rabbitmq-cluster.sh url      RABBITMQ_URL listing the three nodes (vhost /)
#   scripts/rabbitmq-cluster.sh stop-node N | start-node N   (N = 1..3) for the tests
set -euo pipefail

DIR="${CRONQ_CLUSTER_DIR:-${TMPDIR:-/tmp}/cronq-rabbitmq-cluster}"
BASE_PORT="${CRONQ_CLUSTER_BASE_PORT:-5681}"
NODES=(1 2 3)

node_name() { echo "cq$1@localhost"; }
node_port() { echo $((BASE_PORT + $1 - 1)); }
dist_port() { echo $((BASE_PORT + 20000 + $1 - 1)); }

ctl() { # ctl N args... (rabbitmqctl against node N)
  local n=$1; shift
  rabbitmqctl -q -n "$(node_name "$n")" "$@"
}

running() { ctl "$1" await_startup --timeout 1 >/dev/null 2>&1; }

start_node() {
  local n=$1 home="$DIR/cq$1"
  if running "$n"; then return 0; fi
  mkdir -p "$home/mnesia" "$home/log"
  : >"$home/enabled_plugins"
  # Small enough for three nodes beside the shared one; the disk limit is low so a full /tmp does not block publishers in tests.
  printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users = none\ndisk_free_limit.absolute = 50MB\n' \
    "$(node_port "$n")" >"$home/rabbitmq.conf"
  # Debian's rabbitmq-server, run by root, switches to the rabbitmq user (keeping the environment).
  if [ "$(id -u)" = 0 ] && id -u rabbitmq >/dev/null 2>&1; then chown -R rabbitmq: "$DIR"; fi
  env RABBITMQ_NODENAME="$(node_name "$n")" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$(node_port "$n")" \
    RABBITMQ_DIST_PORT="$(dist_port "$n")" \
    RABBITMQ_MNESIA_BASE="$home/mnesia" \
    RABBITMQ_LOG_BASE="$home/log" \
    RABBITMQ_CONFIG_FILE="$home/rabbitmq.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$home/enabled_plugins" \
    RABBITMQ_PID_FILE="$home/pid" \
    rabbitmq-server -detached >/dev/null 2>&1
  # A slow, shared machine can take a while to boot a node.
  ctl "$n" wait --timeout 120 "$home/pid" >/dev/null
  ctl "$n" await_startup --timeout 120 >/dev/null
}

clustered_with_1() { # is node N a member of node 1's cluster?
  ctl 1 cluster_status --formatter json 2>/dev/null | grep -q "\"$(node_name "$1")\""
}

join() {
  local n=$1
  if clustered_with_1 "$n"; then return 0; fi
  ctl "$n" stop_app >/dev/null
  ctl "$n" reset >/dev/null 2>&1
  ctl "$n" join_cluster "$(node_name 1)" >/dev/null 2>&1
  ctl "$n" start_app >/dev/null 2>&1
}

start() {
  command -v rabbitmq-server >/dev/null || { echo "rabbitmq-server is not installed" >&2; exit 3; }
  for n in "${NODES[@]}"; do start_node "$n"; done
  for n in 2 3; do join "$n"; done
  # Tests and the benchmark connect as guest from 127.0.0.1 (allowed: loopback_users = none).
  status
}

stop_node() {
  local n=$1 home="$DIR/cq$1"
  if running "$n"; then ctl "$n" stop "$home/pid" >/dev/null 2>&1 || true; fi
}

stop() {
  for n in 3 2 1; do stop_node "$n"; done
  rm -rf "$DIR"
}

status() {
  for n in "${NODES[@]}"; do
    if running "$n"; then s=running; else s=stopped; fi
    echo "$(node_name "$n") $(node_port "$n") $s"
  done
}

url() {
  local hosts=()
  for n in "${NODES[@]}"; do hosts+=("127.0.0.1:$(node_port "$n")"); done
  local IFS=,
  echo "amqp://guest:guest@${hosts[*]}/"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) url ;;
  stop-node) stop_node "${2:?node number 1-3}" ;;
  start-node) start_node "${2:?node number 1-3}" ;;
  *) echo "usage: $0 start|stop|status|url|stop-node N|start-node N" >&2; exit 2 ;;
esac
