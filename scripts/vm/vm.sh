#!/usr/bin/env bash
# Drive one test-bed guest (VM_LOADER=bls|grub):
#   vm.sh start            fresh disk overlay and firmware variables, boot in the background
#   vm.sh wait [s]         until ssh answers (bounded; default 900 s)
#   vm.sh reboot [s]       systemctl reboot, then wait for a new boot id
#   vm.sh boot-id          the guest's boot id
#   vm.sh power-cut        pull the plug: qemu quits at once, the guest syncs nothing
#   vm.sh power-on         boot again on the same disk (after power-cut)
#   vm.sh stop [s]         clean poweroff; ends exactly our qemu and supervisor if it hangs
#   vm.sh ssh CMD...       run CMD as root in the guest (ops + sudo)
# Every guest reboot is a cold power cycle: qemu runs with -no-reboot and the supervisor starts
# it again (OVMF's warm reset under emulation takes minutes, a cold start seconds).
. "$(dirname "$0")/lib.sh"
cmd=${1:-}; shift || true

# KVM where it works; here a guest under KVM hangs before the kernel's first line, so a probe
# boots the image once under KVM and falls back to TCG when the kernel does not print within
# VM_KVM_PROBE seconds. VM_ACCEL=kvm|tcg skips the probe. The answer is kept in $VM_DIR/accel.
accel() {
    if [ -n "${VM_ACCEL:-}" ]; then echo "$VM_ACCEL"; return; fi
    if [ -s "$VM_DIR/accel" ]; then cat "$VM_DIR/accel"; return; fi
    local a=tcg
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
        local probe="$VM_RUN/kvm-probe" log="$VM_RUN/kvm-probe.log"
        qemu-img create -q -f qcow2 -F raw -b "$VM_IMAGE" "$probe.qcow2"
        cp "$OVMF_VARS_TEMPLATE" "$probe.vars"; : > "$log"
        qemu-system-x86_64 -accel kvm -machine q35 -cpu host -m 1024 -smp 1 -nodefaults -vga none \
            -display none -no-reboot \
            -drive if=pflash,format=raw,readonly=on,file="$OVMF_CODE" \
            -drive if=pflash,format=raw,file="$probe.vars" \
            -drive file="$probe.qcow2",format=qcow2,if=virtio,snapshot=on \
            -chardev file,id=s0,path="$log" -serial chardev:s0 </dev/null >/dev/null 2>&1 &
        local q=$! i
        for i in $(seq "${VM_KVM_PROBE:-40}"); do
            grep -aq 'Linux version' "$log" && { a=kvm; break; }
            kill -0 $q 2>/dev/null || break
            sleep 1
        done
        kill $q 2>/dev/null; wait $q 2>/dev/null || true
        rm -f "$probe.qcow2" "$probe.vars"
    fi
    echo $a > "$VM_DIR/accel"; echo $a
}

supervise() {
    local a=$1 boots=0 rc why start cpu=()
    [ "$a" = kvm ] && cpu=(-cpu host)
    while :; do
        boots=$((boots + 1))
        echo "=== lltune-vm: power on #$boots ($a) at $(date +%s)" >> "$VM_CONSOLE"
        start=$(wc -l < "$VM_CONSOLE")
        # No default devices, no option ROM; ssh forwarded on 127.0.0.1 only. The second NIC is
        # a two-queue virtio-net on a tap device (qemu's user network has one queue).
        qemu-system-x86_64 -accel "$a" "${cpu[@]}" -machine q35 -m "$VM_MEM" -smp "$VM_SMP" \
            -nodefaults -vga none -display none -no-reboot \
            -drive if=pflash,format=raw,readonly=on,file="$OVMF_CODE" \
            -drive if=pflash,format=raw,file="$VM_RUN/vars.fd" \
            -drive file="$VM_RUN/disk.qcow2",format=qcow2,if=virtio,cache=unsafe \
            -netdev user,id=n0,hostfwd=tcp:127.0.0.1:"$VM_SSH_PORT"-:22 \
            -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:01,romfile= \
            -netdev tap,id=n1,ifname="$VM_TAP",script=no,downscript=no,queues=2 \
            -device virtio-net-pci,netdev=n1,mac=52:54:00:12:34:02,mq=on,vectors=6,romfile= \
            -device virtio-rng-pci \
            -chardev file,id=s0,path="$VM_CONSOLE",append=on -serial chardev:s0 \
            -monitor unix:"$VM_MONITOR",server=on,wait=off \
            -pidfile "$VM_QEMU_PID" </dev/null >>"$VM_RUN/qemu.log" 2>&1
        rc=$?
        why=other
        tail -n +$((start + 1)) "$VM_CONSOLE" | grep -aq 'reboot: Power down' && why=poweroff
        tail -n +$((start + 1)) "$VM_CONSOLE" | grep -aq 'reboot: Restarting system' && why=reboot
        echo "=== lltune-vm: qemu exited rc=$rc at $(date +%s) ($why)" >> "$VM_CONSOLE"
        [ $rc -eq 0 ] && [ $why = reboot ] && [ ! -e "$VM_RUN/stop" ] || break
    done
    rm -f "$VM_QEMU_PID" "$VM_SUPERVISOR_PID"
}

power_on() {
    vm_running && { echo "vm.sh: the $VM_LOADER guest is already running" >&2; exit 1; }
    local a; a=$(accel)
    rm -f "$VM_RUN/stop" "$VM_QEMU_PID"
    setsid "$0" __supervise "$a" </dev/null >/dev/null 2>&1 &
    echo $! > "$VM_SUPERVISOR_PID"
    local i
    for i in $(seq 100); do [ -s "$VM_QEMU_PID" ] && break; vm_running || break; sleep 0.2; done
    [ -s "$VM_QEMU_PID" ] || { echo "vm.sh: qemu did not start:" >&2; tail -5 "$VM_RUN/qemu.log" >&2; exit 1; }
    vm_log "powered on ($a), qemu pid $(cat "$VM_QEMU_PID")"
}

wait_ssh() {
    local limit=${1:-900} t0; t0=$(date +%s)
    while :; do
        if vm_ssh true 2>/dev/null; then vm_log "ssh up after $(( $(date +%s) - t0 )) s"; return 0; fi
        vm_running || { echo "vm.sh: the $VM_LOADER guest is not running" >&2; tail -20 "$VM_CONSOLE" >&2; return 1; }
        [ $(( $(date +%s) - t0 )) -lt "$limit" ] || { echo "vm.sh: no ssh after ${limit}s" >&2; tail -20 "$VM_CONSOLE" >&2; return 1; }
        sleep 3
    done
}

close_ssh() { ssh -O exit -o ControlPath="$VM_RUN/c" -p "$VM_SSH_PORT" "$VM_USER@127.0.0.1" >/dev/null 2>&1 || true; }

stop() {
    local limit=${1:-300} t0 sup q
    vm_running || { close_ssh; return 0; }
    sup=$(cat "$VM_SUPERVISOR_PID"); touch "$VM_RUN/stop"; t0=$(date +%s)
    vm_ssh systemctl poweroff >/dev/null 2>&1 || true
    while kill -0 "$sup" 2>/dev/null; do
        if [ $(( $(date +%s) - t0 )) -ge "$limit" ]; then
            echo "vm.sh: still running after ${limit}s; ending our qemu" >&2
            q=$(cat "$VM_QEMU_PID" 2>/dev/null || true)
            [ -n "$q" ] && { kill "$q" 2>/dev/null; sleep 3; kill -9 "$q" 2>/dev/null; }
            kill "$sup" 2>/dev/null || true
            break
        fi
        sleep 1
    done
    close_ssh
    rm -f "$VM_SUPERVISOR_PID" "$VM_QEMU_PID"
    vm_log "stopped after $(( $(date +%s) - t0 )) s"
}

case "$cmd" in
start)
    [ -s "$VM_IMAGE" ] || { echo "vm.sh: no image for $VM_LOADER; run scripts/vm/build-image.sh" >&2; exit 1; }
    vm_running && { echo "vm.sh: the $VM_LOADER guest is already running" >&2; exit 1; }
    rm -f "$VM_RUN/disk.qcow2"
    qemu-img create -q -f qcow2 -F raw -b "$VM_IMAGE" "$VM_RUN/disk.qcow2"
    cp "$OVMF_VARS_TEMPLATE" "$VM_RUN/vars.fd"
    : > "$VM_CONSOLE"
    power_on ;;
power-on) power_on ;;
wait) wait_ssh "${1:-900}" ;;
boot-id) vm_ssh cat /proc/sys/kernel/random/boot_id ;;
reboot)
    old=$(vm_ssh cat /proc/sys/kernel/random/boot_id); t0=$(date +%s)
    vm_ssh systemctl reboot >/dev/null 2>&1 || true
    close_ssh
    while :; do
        new=$(vm_ssh cat /proc/sys/kernel/random/boot_id 2>/dev/null || true)
        if [ -n "$new" ] && [ "$new" != "$old" ]; then vm_log "rebooted, ssh up after $(( $(date +%s) - t0 )) s"; break; fi
        vm_running || { echo "vm.sh: the guest stopped instead of rebooting" >&2; tail -20 "$VM_CONSOLE" >&2; exit 1; }
        [ $(( $(date +%s) - t0 )) -lt "${1:-900}" ] || { echo "vm.sh: no new boot after ${1:-900}s" >&2; exit 1; }
        sleep 3
    done ;;
power-cut)
    vm_running || { echo "vm.sh: the $VM_LOADER guest is not running" >&2; exit 1; }
    touch "$VM_RUN/stop"; sup=$(cat "$VM_SUPERVISOR_PID"); q=$(cat "$VM_QEMU_PID" 2>/dev/null || true)
    # The monitor's quit ends qemu at once: what the guest has not written is lost. Should the
    # monitor not answer, SIGKILL does the same.
    timeout 10 python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"quit\n"); s.recv(4096)' \
        "$VM_MONITOR" >/dev/null 2>&1 || true
    for _ in $(seq 50); do [ -n "$q" ] && kill -0 "$q" 2>/dev/null || break; sleep 0.2; done
    [ -n "$q" ] && kill -0 "$q" 2>/dev/null && kill -9 "$q"
    for _ in $(seq 100); do kill -0 "$sup" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$sup" 2>/dev/null && { echo "vm.sh: the supervisor did not end after the power cut" >&2; exit 1; }
    close_ssh; rm -f "$VM_SUPERVISOR_PID" "$VM_QEMU_PID"
    vm_log "power cut" ;;
stop) stop "${1:-300}" ;;
ssh) vm_ssh "$@" ;;
__supervise) supervise "$1" ;;
*) sed -n '2,11p' "$0" >&2; exit 2 ;;
esac
