#!/usr/bin/env bash
# Installs the peer systems the end-to-end benchmark compares Berth with (Debian packages),
# and etcd for the Berth cluster rows.
# `npm run bench` runs this when one of the binaries is missing. apt may start system
# services for them; the bench never uses those (it starts its own on other ports in a temp
# directory), but we stop them so they do not compete for the machine's two cores.
set -euo pipefail
if [ "$(id -u)" != "0" ]; then SUDO=sudo; else SUDO=; fi
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v rabbitmq-server >/dev/null 2>&1 || need+=(rabbitmq-server)
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
# etcd is the consensus of the Berth cluster rows (W5).
[ -x /usr/bin/etcd ] || need+=(etcd-server)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
  # policy-rc.d 101 keeps apt from starting services where invoke-rc.d honours it.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q "${need[@]}"
fi
for service in redis-server rabbitmq-server nats-server etcd; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    $SUDO systemctl stop "$service" || true
    $SUDO systemctl disable "$service" >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then
    $SUDO service "$service" stop >/dev/null 2>&1 || true
  fi
done
echo "peers: redis-server $(redis-server --version | awk '{print $3}'), nats-server $(nats-server --version 2>&1 | head -1), rabbitmq-server $(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo '?')"
