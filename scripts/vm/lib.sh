# Shared settings of the VM test bed (sourced, not run). Everything lives under
# $VM_DIR (default target/vm of the checkout): the package tarball and the images, cached by a
# hash of their inputs, and one run folder per boot-loader variant with its qemu, disk overlay,
# firmware variables, console log and ssh control socket.
#   VM_LOADER  bls (systemd-boot reading /boot/loader/entries) | grub (Debian's GRUB, update-grub)
set -euo pipefail
VM_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_SRC=$(cd "$VM_HERE/../.." && pwd)
VM_DIR=${VM_DIR:-$VM_SRC/target/vm}
mkdir -p "$VM_DIR"
VM_DIR=$(cd "$VM_DIR" && pwd)
export VM_DIR
VM_LOADER=${VM_LOADER:-bls}
case "$VM_LOADER" in bls|grub) ;; *) echo "VM_LOADER must be bls or grub, not '$VM_LOADER'" >&2; exit 2;; esac
VM_SUITE=${VM_SUITE:-bookworm}
# The Debian archive this machine's apt already uses (deb822 or one-line sources).
vm_mirror() {
    local m
    m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1 || true)
    [ -n "$m" ] || m=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -1 || true)
    [ -n "$m" ] || { echo "scripts/vm: no Debian archive found in apt's sources; set VM_MIRROR" >&2; return 1; }
    echo "$m"
}
VM_MIRROR=${VM_MIRROR:-$(vm_mirror)}
# The guest: what a trading host's userland needs for lltune's live paths (systemd, sshd,
# python3 for Ansible, ethtool, irqbalance to stop, cyclictest for `lltune validate`), and
# both boot loaders' tools (the grub image is the only one with /etc/default/grub), and the
# daemons lltune drives through systemd: chrony (time sync) and TuneD (installed, not started).
VM_PACKAGES=systemd-sysv,linux-image-amd64,openssh-server,python3,udev,kmod,iproute2,ethtool,procps,sudo,dbus,libpam-systemd,initramfs-tools,zstd,e2fsprogs,irqbalance,rt-tests,grub-efi-amd64-bin,grub2-common,chrony,tuned
VM_MEM=${VM_MEM:-3584}      # MiB: a 1 GiB page (the gate case) needs more than the 2 GiB lltune leaves the OS
VM_SMP=${VM_SMP:-2}
VM_USER=ops                 # the non-root user Ansible logs in as (sudo for become)
case "$VM_LOADER" in bls) VM_SSH_PORT=${VM_SSH_PORT:-2322};; grub) VM_SSH_PORT=${VM_SSH_PORT:-2323};; esac
VM_RUN="$VM_DIR/run-$VM_LOADER"
mkdir -p "$VM_RUN"
VM_KEY="$VM_DIR/id_ed25519"
VM_CONSOLE="$VM_RUN/console.log"
VM_QEMU_PID="$VM_RUN/qemu.pid"
VM_SUPERVISOR_PID="$VM_RUN/supervisor.pid"
VM_MONITOR="$VM_RUN/monitor.sock"
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE.fd}
OVMF_VARS_TEMPLATE=${OVMF_VARS_TEMPLATE:-/usr/share/OVMF/OVMF_VARS.fd}
# The tap device of the guest's second, multi-queue NIC (the user network has one queue).
VM_TAP=${VM_TAP:-lltvm-$VM_LOADER}

# The image's inputs (the build script, the suite, the package list): a change builds a new image.
vm_image_hash() {
    { cat "$VM_HERE/build-image.sh"; echo "$VM_SUITE $VM_PACKAGES $VM_LOADER"; } | sha256sum | cut -c1-16
}
vm_base_hash() {
    echo "$VM_SUITE $VM_PACKAGES base-v1" | sha256sum | cut -c1-16
}
VM_IMAGE="$VM_DIR/image-$VM_LOADER-$(vm_image_hash).raw"

# One multiplexed ssh connection: a new one costs seconds of emulated CPU in the guest.
# The control socket path must stay under 108 bytes, hence a short name.
vm_ssh_opts() {
    echo -p "$VM_SSH_PORT" -i "$VM_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -o ConnectTimeout=30 -o BatchMode=yes -o ServerAliveInterval=10 \
        -o ServerAliveCountMax=6 -o ControlMaster=auto -o ControlPath="$VM_RUN/c" -o ControlPersist=300
}
# Run a shell command line in the guest as root (through the non-root user and sudo, as
# Ansible's become does): vm_ssh 'cat /proc/cmdline; systemctl is-system-running'.
vm_ssh() {
    # shellcheck disable=SC2046
    ssh $(vm_ssh_opts) "$VM_USER@127.0.0.1" "sudo -n bash -c $(printf %q "$*")"
}
vm_running() {
    [ -s "$VM_SUPERVISOR_PID" ] && kill -0 "$(cat "$VM_SUPERVISOR_PID")" 2>/dev/null
}
vm_log() { echo "[vm $VM_LOADER $(date +%H:%M:%S)] $*"; }
