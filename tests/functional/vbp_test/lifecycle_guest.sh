# The guest's side of test_lifecycle.py (its /job/lifecycle.sh):
#   sh /job/lifecycle.sh loop NAME JOBFILE [any]
#     fio rounds until the host writes "stop" on the console; markers
#     (===VBP-ROUND...===) to the console, the host timestamps them;
#     "any": on whatever /dev/vd* exists, waiting while there is none
#     (hot-unplug)
#   sh /job/lifecycle.sh reload NAME
#     fio in the background, unbind the disk's virtio device from
#     virtio_blk with I/O in flight, bind it again, point /dev/vbpdisk at
#     the re-probed disk
# Results go to stdout (vbp_cmd's stdout section).
up() { cut -d' ' -f1 /proc/uptime; }
ios() { grep '"total_ios"' "$1" 2>/dev/null | tr -dc '0-9\n' |
        awk '{s += $1} END {print s + 0}'; }
nver() { grep -c -E 'verify failed|^verify:|bad magic|bad header' "$1"; }

loop() {
    name=$1 job=$2 mode=$3 stop=/tmp/vbp/$1.stop con=/dev/ttyS0 k=0 last=
    rm -f "$stop"
    # the job's stdin is /dev/null; /init reads the console again only
    # after the job, so this reader is the only one meanwhile
    ( read -r _l <$con; : >"$stop" ) &
    rdpid=$!
    echo "===VBP-LOOP-START $name===" >$con
    while [ ! -e "$stop" ]; do
        dev=/dev/vda
        if [ "$mode" = any ]; then
            dev=
            for d in /sys/block/vd*; do
                [ -b "/dev/${d##*/}" ] && { dev=/dev/${d##*/}; break; }
            done
            [ -n "$dev" ] || { usleep 100000; continue; }
        fi
        k=$((k + 1))
        out=/tmp/vbp/$name.r$k
        echo "===VBP-ROUND $name $k $dev t=$(up)===" >$con
        VBP_DISK=$dev fio --output-format=json --output="$out.json" \
            --eta=never "$job" 2>"$out.err"
        rc=$?
        ios=$(ios "$out.json") ver=$(nver "$out.err")
        err=$(grep '"error"' "$out.json" 2>/dev/null | tr -dc '0-9\n' |
              awk '$1 > m {m = $1} END {print m + 0}')
        echo "===VBP-ROUND-END $name $k rc=$rc ios=$ios error=$err" \
             "verify=$ver t=$(up)===" >$con
        echo "ROUND $k dev=$dev rc=$rc ios=$ios error=$err verify=$ver"
        sed "s/^/ROUND-ERR $k: /" "$out.err" | head -n 20
        if [ "$rc" = 0 ]; then
            [ -n "$last" ] && rm -f "$last"
            last=$out.json
        else
            rm -f "$out.json"
        fi
        rm -f "$out.err"
    done
    kill $rdpid 2>/dev/null
    [ -n "$last" ] && cp "$last" "/tmp/vbp/$name.json"
    echo "LOOP-END rounds=$k"
}

first_disk() {
    for d in /sys/block/vd*; do
        [ -e "$d/device" ] && { echo "${d##*/}"; return; }
    done
}

writes() { awk '{print $5}' "/sys/block/$disk/stat"; }

reload() {
    name=$1 drv=/sys/bus/virtio/drivers/virtio_blk bg=/tmp/vbp/$1.bg
    disk=$(first_disk)
    [ -n "$disk" ] || { echo "RELOAD no disk"; exit 1; }
    vdev=$(basename "$(readlink "/sys/block/$disk/device")")
    echo "RELOAD disk=$disk virtio=$vdev"
    VBP_DISK=/dev/$disk fio --output-format=json --output="$bg.json" \
        --eta=never /job/bg.fio 2>"$bg.err" &
    fiopid=$!
    # fio takes a while to start under TCG: wait for its writes, 1 s more
    w0=$(writes) i=0
    while [ "$(writes)" -lt $((w0 + 200)) ]; do
        i=$((i + 1))
        [ $i -gt 300 ] && { echo "RELOAD bg fio does no I/O"; break; }
        usleep 100000
    done
    sleep 1
    w1=$(writes)
    inf=$(awk '{print $1 + $2}' "/sys/block/$disk/inflight")
    echo "RELOAD writes-before-unbind=$((w1 - w0))" \
         "inflight-before-unbind=$inf"
    t0=$(up)
    echo "$vdev" >"$drv/unbind"
    # shellcheck disable=SC2320 # echo's own status: the unbind
    rc=$?
    # shellcheck disable=SC2012 # names of block devices
    echo "RELOAD unbind-rc=$rc t=$t0..$(up)" \
         "disks-after=$(ls /sys/block | tr '\n' ,)"
    i=0
    while kill -0 $fiopid 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt 300 ]; then
            echo "RELOAD bg-fio-stuck: killing it"
            kill -9 $fiopid
            break
        fi
        usleep 100000
    done
    wait $fiopid
    echo "RELOAD bg-rc=$?"
    echo "RELOAD bg-ios=$(ios "$bg.json") bg-verify=$(nver "$bg.err")"
    sed 's/^/RELOAD-BG-ERR: /' "$bg.err" | head -n 10
    echo "$vdev" >"$drv/bind"
    # shellcheck disable=SC2320 # echo's own status: the bind
    echo "RELOAD bind-rc=$?"
    i=0
    until new=$(first_disk) && [ -n "$new" ] && [ -b "/dev/$new" ]; do
        i=$((i + 1))
        [ $i -gt 100 ] && { echo "RELOAD no disk after bind"; exit 1; }
        usleep 100000
    done
    ln -sf "/dev/$new" /dev/vbpdisk
    echo '{"jobs": []}' >"/tmp/vbp/$name.json"  # no fio result of its own
    echo "RELOAD rebound disk=$new" \
         "virtio=$(basename "$(readlink "/sys/block/$new/device")")" \
         "sectors=$(cat "/sys/block/$new/size")"
}

"$@"
