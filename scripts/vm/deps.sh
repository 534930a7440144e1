#!/usr/bin/env bash
# Debian packages the VM test bed needs on the machine that runs it (as root, or with sudo):
# qemu (TCG or KVM), OVMF firmware, systemd-boot's and GRUB's EFI images, mmdebstrap, and the
# tools that make the disk image with no loop device and no mount. Installs only what is
# missing. qemu-system-x86 and qemu-utils must be one qemu version: where a newer qemu-utils
# is installed from elsewhere (backports), it is moved to the version qemu-system-x86 has.
set -euo pipefail
need=()
for pair in qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mmdebstrap:mmdebstrap mcopy:mtools \
    mkfs.vfat:dosfstools sfdisk:fdisk mke2fs:e2fsprogs ssh:openssh-client grub-mkstandalone:grub-efi-amd64-bin; do
    command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
[ -f /usr/share/OVMF/OVMF_CODE.fd ] || need+=(ovmf)
[ -f /usr/lib/systemd/boot/efi/systemd-bootx64.efi ] || need+=(systemd-boot-efi)
[ -d /usr/lib/grub/x86_64-efi ] || need+=(grub-efi-amd64-bin)
[ ${#need[@]} -eq 0 ] && { echo "scripts/vm/deps.sh: all present"; exit 0; }
sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
pkgs=()
for p in "${need[@]}"; do [ "$p" = qemu-utils ] || pkgs+=("$p"); done
if printf '%s\n' "${need[@]}" | grep -qxE 'qemu-system-x86|qemu-utils'; then
    v=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/{print $2}')
    pkgs+=("qemu-utils=$v")
fi
echo "scripts/vm/deps.sh: apt-get install ${pkgs[*]}"
"${sudo[@]}" apt-get install -y -q --allow-downgrades "${pkgs[@]}"
