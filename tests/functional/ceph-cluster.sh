#!/bin/bash
# Throwaway single-node Ceph (16.2 / Debian bookworm) for tests.
#   ceph-cluster.sh start DIR   -> mon + 1 OSD, pool "rbd", image "img" (256 MiB)
#   ceph-cluster.sh stop DIR    -> kill daemons by recorded pid, rm -rf DIR
# Clients (qemu, rbd, rados) use: conf=DIR/ceph.conf  (cephx disabled, no keyring)
# Env: CEPH_PORT (mon msgr2 port, default 3300), CEPH_STORE (memstore|bluestore,
#      default memstore), CEPH_POOL (default rbd), CEPH_IMAGE (default img),
#      CEPH_IMAGE_SIZE (default 256M)
set -euo pipefail

PORT=${CEPH_PORT:-3300}
STORE=${CEPH_STORE:-memstore}
POOL=${CEPH_POOL:-rbd}
IMAGE=${CEPH_IMAGE:-img}
IMAGE_SIZE=${CEPH_IMAGE_SIZE:-256M}

die() { echo "ceph-cluster: $*" >&2; exit 1; }

# start a daemon in the foreground (-f) in its own session, record its pid
spawn() { # name cmd...
    local name=$1; shift
    setsid "$@" -f </dev/null >>"$D/log/$name.out" 2>&1 &
    echo $! >"$D/run/$name.pid"
}

do_start() {
    [ -e "$D" ] && die "$D already exists"
    # the mon would otherwise retry bind() for 10 s and then exit
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && die "127.0.0.1:$PORT already in use"
    mkdir -p "$D"/{mon,osd,run,log,crash}
    D=$(cd "$D" && pwd)
    # on any failure: show logs, kill what was started, remove DIR
    trap 'tail -n 20 "$D"/log/* >&2; do_stop' EXIT
    local fsid; fsid=$(cat /proc/sys/kernel/random/uuid)
    local osd_uuid; osd_uuid=$(cat /proc/sys/kernel/random/uuid)
    local conf=$D/ceph.conf
    cat >"$conf" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$PORT
ms_bind_msgr1 = false
ms_bind_msgr2 = true
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
auth_supported = none
auth_allow_insecure_global_id_reclaim = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
keyring = /dev/null
run_dir = $D/run
crash_dir = $D/crash
log_to_file = false
mon_cluster_log_to_file = false
err_to_stderr = true
log_to_stderr = false
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
[mon]
admin_socket = $D/run/\$name.asok
mon_data = $D/mon
log_file = $D/log/\$name.log
log_to_file = true
mon_data_avail_warn = 1
mon_data_avail_crit = 0
paxos_propose_interval = 0.01
paxos_min_wait = 0.01
[osd]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
admin_socket = $D/run/\$name.asok
osd_data = $D/osd
osd_journal = $D/osd/journal
log_file = $D/log/\$name.log
log_to_file = true
osd_objectstore = $STORE
memstore_device_bytes = 1073741824
bluestore_block_path = $D/osd-block
bluestore_block_size = 1073741824
bluestore_block_create = true
bluestore_block_db_create = false
bluestore_block_wal_create = false
osd_memory_target = 939524096
bluestore_cache_autotune = false
bluestore_cache_size = 67108864
bdev_aio_poll_ms = 10
osd_op_num_shards = 1
EOF
    local C=(-c "$conf")
    # monitor
    ceph-mon "${C[@]}" -i a --mkfs >"$D/log/mon-mkfs.out" 2>&1 || { cat "$D/log/mon-mkfs.out" >&2; die "mon mkfs failed"; }
    spawn mon.a ceph-mon "${C[@]}" -i a
    # OSD id 0 (mon must be up; `ceph` retries until it is)
    local id; id=$(ceph "${C[@]}" --connect-timeout 20 osd new "$osd_uuid") || die "osd new failed"
    [ "$id" = 0 ] || die "unexpected osd id $id"
    ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$osd_uuid" >"$D/log/osd-mkfs.out" 2>&1 || { cat "$D/log/osd-mkfs.out" >&2; die "osd mkfs failed"; }
    spawn osd.0 ceph-osd "${C[@]}" -i 0
    ceph "${C[@]}" osd pool create "$POOL" 8 8 replicated >/dev/null 2>&1 || die "pool create failed"
    # short objecter tick: the first op otherwise waits ~5 s for the OSD to come up
    rbd "${C[@]}" --objecter-tick-interval 0.1 pool init "$POOL" || die "rbd pool init failed"
    rbd "${C[@]}" create --size "$IMAGE_SIZE" "$POOL/$IMAGE" || die "rbd create failed"
    trap - EXIT
    echo "$D/ceph.conf"
}

alive() { # pid conf -> true if pid is a live (non-zombie) process using conf
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$st" != Z ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

do_stop() {
    [ -d "$D" ] || die "$D does not exist"
    D=$(cd "$D" && pwd)
    local f pid pids=()
    # throwaway data: SIGKILL straight away (SIGTERM costs ~2 s per daemon, and
    # up to osd_mon_shutdown_timeout=5 s if the mon is already gone)
    for f in "$D"/run/*.pid; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        alive "$pid" "$D/ceph.conf" && kill -KILL "$pid" && pids+=("$pid")
    done
    for pid in "${pids[@]}"; do
        while alive "$pid" "$D/ceph.conf"; do sleep 0.05; done
    done
    rm -rf "$D"
}

# for outage tests: SIGKILL the OSD / start it again on the same data
# (only meaningful with CEPH_STORE=bluestore; memstore loses its PGs on kill)
do_kill_osd() {
    D=$(cd "$D" && pwd)
    local pid; pid=$(cat "$D/run/osd.0.pid")
    alive "$pid" "$D/ceph.conf" && kill -KILL "$pid"
    while alive "$pid" "$D/ceph.conf"; do sleep 0.05; done
}
do_start_osd() {
    D=$(cd "$D" && pwd)
    local pid; pid=$(cat "$D/run/osd.0.pid")
    alive "$pid" "$D/ceph.conf" && die "osd.0 still running (pid $pid)"
    spawn osd.0 ceph-osd -c "$D/ceph.conf" -i 0
}

usage="usage: $0 start|stop|kill-osd|start-osd DIR"
[ $# -eq 2 ] || die "$usage"
D=$2
case $1 in
    start) do_start ;;
    stop) do_stop ;;
    kill-osd) do_kill_osd ;;
    start-osd) do_start_osd ;;
    *) die "$usage" ;;
esac
