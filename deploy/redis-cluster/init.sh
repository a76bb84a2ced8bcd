#!/bin/sh
# Forms the Redis Cluster of docker-compose.cluster.yml, once: the one-shot service
# redis-cluster-init runs it at every `docker compose up`, and
# test/integration/compose-cluster.test.ts runs this same file against local nodes.
#
#   init.sh IP:PORT...     (six nodes: three masters and a replica of each)
#
# - No node knows another yet: a new cluster, `redis-cli --cluster create`.
# - Every node already knows all the others: formed before (a restart); nothing to do.
# - Anything in between (a node lost its nodes.conf, a create cut short): stop and say so,
#   rather than guess; `redis-cli --cluster check` and `fix` are the tools for that.
# Then wait until every node reports cluster_state:ok and every replica is linked, so that the
# gateways and workers that wait for this script start on a whole cluster.
#
# Addresses are IPs: CLUSTER MEET (which `--cluster create` sends) takes no host names.
set -eu

replicas="${CLUSTER_REPLICAS:-1}"
timeout="${CLUSTER_TIMEOUT_S:-60}"

cli() {
  node="$1"
  shift
  redis-cli -h "${node%:*}" -p "${node##*:}" "$@"
}

field() { # node, section, field: one value of INFO <section>
  cli "$1" info "$2" 2>/dev/null | tr -d '\r' | sed -n "s/^$3://p"
}

wait_for() { # description, command...
  what="$1"
  shift
  waited=0
  until "$@"; do
    waited=$((waited + 1))
    if [ "$waited" -ge "$timeout" ]; then
      echo "redis-cluster-init: gave up after ${timeout}s waiting for $what" >&2
      exit 1
    fi
    sleep 1
  done
}

answers() { [ "$(cli "$1" ping 2>/dev/null)" = "PONG" ]; }

known_nodes() { cli "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_known_nodes://p'; }

healthy() { # every node: cluster_state:ok, knows them all, and (replicas) linked to its master
  for node in "$@"; do
    info="$(cli "$node" cluster info 2>/dev/null | tr -d '\r')"
    case "$info" in *"cluster_state:ok"*) ;; *) return 1 ;; esac
    [ "$(known_nodes "$node")" = "$#" ] || return 1
    [ "$(field "$node" replication role)" = "master" ] || [ "$(field "$node" replication master_link_status)" = "up" ] || return 1
  done
}

if [ "$#" -lt 3 ]; then
  echo "usage: init.sh IP:PORT IP:PORT IP:PORT..." >&2
  exit 2
fi

for node in "$@"; do
  wait_for "$node to answer PING" answers "$node"
done

alone=0
whole=0
for node in "$@"; do
  known="$(known_nodes "$node")"
  if [ "$known" = "1" ]; then alone=$((alone + 1)); fi
  if [ "$known" = "$#" ]; then whole=$((whole + 1)); fi
done

if [ "$alone" = "$#" ]; then
  echo "redis-cluster-init: creating a cluster of $# nodes, $replicas replica(s) per master"
  redis-cli --cluster create "$@" --cluster-replicas "$replicas" --cluster-yes
elif [ "$whole" = "$#" ]; then
  echo "redis-cluster-init: the $# nodes already form a cluster; nothing to create"
else
  echo "redis-cluster-init: the nodes are partly joined ($alone alone, $whole knowing all $#):" >&2
  echo "  not touching them. Inspect with: redis-cli --cluster check $1" >&2
  exit 1
fi

wait_for "every node to report cluster_state:ok with all $# nodes and its replica linked" healthy "$@"
echo "redis-cluster-init: cluster ok"
