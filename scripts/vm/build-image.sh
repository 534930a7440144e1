#!/usr/bin/env bash
# Build the guest disk image of one boot-loader variant (VM_LOADER=bls|grub), from Debian's
# packages, with no loop device and no mount: mmdebstrap makes the root file system (cached as
# a tarball by a hash of suite and package list), mke2fs -d and mkfs.vfat + mcopy make the
# file systems, sfdisk the GPT. The image is cached by a hash of its inputs (this script, lib.sh,
# the package list): a second build with the same inputs is a no-op.
#
#   bls   ESP (FAT) mounted at /boot: systemd-boot as EFI/BOOT/BOOTX64.EFI reads the Boot
#         Loader Specification entries /boot/loader/entries/*.conf, where RHEL keeps them.
#   grub  ESP at /boot/efi holding GRUB's EFI image; /boot/grub/grub.cfg on the root file
#         system, /etc/default/grub, update-grub: Debian's and Ubuntu's layout.
#
# The guest has one user, ops (ssh key, sudo without password: Ansible's become), the group
# trading with a member trader (limits.d rules are proven with a new login of trader), two
# NICs (virtio-net on qemu's user network for ssh; a second, multi-queue virtio-net on a tap).
. "$(dirname "$0")/lib.sh"
if [ -s "$VM_IMAGE" ]; then vm_log "image cached: $(basename "$VM_IMAGE")"; exit 0; fi
for tool in mmdebstrap mke2fs mkfs.vfat mcopy sfdisk ssh-keygen; do
    command -v "$tool" >/dev/null || { echo "build-image: $tool not found (run scripts/vm/deps.sh)" >&2; exit 1; }
done
t0=$(date +%s)
BASE="$VM_DIR/base-$(vm_base_hash).tar"
WORK="$VM_DIR/build-$VM_LOADER"
rm -rf "$WORK"; mkdir -p "$WORK"; cd "$WORK"
trap 'rm -rf "$WORK"' EXIT
[ -s "$VM_KEY" ] || ssh-keygen -q -t ed25519 -N '' -C lltune-vm -f "$VM_KEY"

if [ ! -s "$BASE" ]; then
    vm_log "mmdebstrap $VM_SUITE from $VM_MIRROR"
    mmdebstrap --mode="${VM_MMDEBSTRAP_MODE:-unshare}" --variant=minbase --include="$VM_PACKAGES" \
        --aptopt='Acquire::Retries "3"' "$VM_SUITE" "$BASE.part.tar" "deb $VM_MIRROR $VM_SUITE main" \
        > mmdebstrap.log 2>&1 || { tail -30 mmdebstrap.log >&2; exit 1; }
    mv "$BASE.part.tar" "$BASE"
fi
mkdir rootfs
tar -C rootfs --numeric-owner --xattrs --xattrs-include='*' -xpf "$BASE"
R=rootfs
KVER=$(ls $R/lib/modules | sort -V | tail -1)
MID=$(tr -d - </proc/sys/kernel/random/uuid)
echo "$MID" > $R/etc/machine-id
echo "lltune-vm-$VM_LOADER" > $R/etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 lltune-vm-%s\n' "$VM_LOADER" > $R/etc/hosts

# Network: DHCP on the first NIC (qemu's user network, ssh forwarded); the second NIC is
# brought up with no address (lltune_nic and lltune_irq work on its queues).
mkdir -p $R/etc/systemd/network
printf '[Match]\nMACAddress=52:54:00:12:34:01\n[Network]\nDHCP=yes\n' > $R/etc/systemd/network/10-ssh.network
printf '[Match]\nMACAddress=52:54:00:12:34:02\n[Link]\nRequiredForOnline=no\n[Network]\nLinkLocalAddressing=no\nConfigureWithoutCarrier=yes\n' \
    > $R/etc/systemd/network/20-mq.network
chroot $R systemctl enable systemd-networkd.service >/dev/null 2>&1

# Users: ops logs in with the key and becomes root through sudo; trader is in the group the
# limits apply to. No root password, no root login.
chroot $R groupadd -r trading
chroot $R useradd -m -s /bin/bash -G sudo ops
chroot $R useradd -m -s /bin/bash -G trading trader
echo 'ops ALL=(ALL:ALL) NOPASSWD: ALL' > $R/etc/sudoers.d/ops; chmod 440 $R/etc/sudoers.d/ops
for u in ops trader; do
    install -d -m 700 -o "$(chroot $R id -u $u)" -g "$(chroot $R id -g $u)" $R/home/$u/.ssh
    install -m 600 -o "$(chroot $R id -u $u)" -g "$(chroot $R id -g $u)" "$VM_KEY.pub" $R/home/$u/.ssh/authorized_keys
done
# Less work at boot under emulation: no periodic jobs, no drivers for hardware a test guest
# never uses (the iTCO watchdog would also arm a 10-minute hardware watchdog at shutdown).
chroot $R systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
    dpkg-db-backup.timer e2scrub_reap.service modprobe@drm.service >/dev/null 2>&1 || true
for m in kvm kvm_amd kvm_intel irqbypass ccp cfg80211 rfkill pcspkr i2c_i801 i2c_smbus lpc_ich \
    iTCO_wdt iTCO_vendor_support intel_pmc_bxt psmouse serio_raw; do echo "blacklist $m"; done \
    > $R/etc/modprobe.d/lltune-vm-blacklist.conf
# TuneD is installed but not started at boot: a running profile would set sysctls lltune sets
# too. The scenario starts it for its TuneD phase. chrony runs, with no network pool (the guest
# has no route to one; a pool's sources come and go): only what lltune adds is a source.
chroot $R systemctl disable tuned.service >/dev/null 2>&1
sed -i -e 's/^pool /#pool /' -e 's/^server /#server /' $R/etc/chrony/chrony.conf
grep -q '^confdir /etc/chrony/conf.d' $R/etc/chrony/chrony.conf || { echo "build-image: chrony.conf has no confdir /etc/chrony/conf.d" >&2; exit 1; }
# A small initrd (6 MB instead of 30): the boot is minutes faster under emulation.
echo MODULES=list > $R/etc/initramfs-tools/conf.d/lltune-vm.conf
printf '%s\n' virtio_pci virtio_blk virtio_scsi ext4 crc32c_generic >> $R/etc/initramfs-tools/modules
chroot $R mkinitramfs -o /boot/initrd.small "$KVER" > mkinitramfs.log 2>&1 || { cat mkinitramfs.log >&2; exit 1; }
mv $R/boot/initrd.small $R/boot/initrd.img-$KVER

mkdir -p esp/EFI/BOOT
case "$VM_LOADER" in
bls)
    ESP_MB=256
    printf 'LABEL=root / ext4 defaults,errors=remount-ro 0 1\nLABEL=ESP /boot vfat defaults,umask=0022 0 0\n' > $R/etc/fstab
    cp /usr/lib/systemd/boot/efi/systemd-bootx64.efi esp/EFI/BOOT/BOOTX64.EFI
    mkdir -p esp/EFI/systemd esp/loader/entries
    cp /usr/lib/systemd/boot/efi/systemd-bootx64.efi esp/EFI/systemd/
    find $R/boot -maxdepth 1 -type f -exec mv {} esp/ \;
    rm -rf "${R:?}"/boot/*
    printf 'timeout 0\neditor no\n' > esp/loader/loader.conf
    cat > esp/loader/entries/$MID-$KVER.conf <<ENTRY
title      Debian GNU/Linux 12 (bookworm)
version    $KVER
machine-id $MID
linux      /vmlinuz-$KVER
initrd     /initrd.img-$KVER
options    root=LABEL=root rw console=ttyS0
ENTRY
    ;;
grub)
    ESP_MB=64
    printf 'LABEL=root / ext4 defaults,errors=remount-ro 0 1\nLABEL=ESP /boot/efi vfat defaults,umask=0077 0 1\n' > $R/etc/fstab
    mkdir -p $R/boot/efi $R/boot/grub
    sed -e 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=0/' -e 's/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT=""/' \
        -e 's/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX="console=ttyS0"/' -e 's/^#GRUB_TERMINAL=.*/GRUB_TERMINAL=console/' \
        $R/usr/share/grub/default/grub > $R/etc/default/grub
    grep -q '^GRUB_TERMINAL=console' $R/etc/default/grub || echo GRUB_TERMINAL=console >> $R/etc/default/grub
    # The first boot's grub.cfg; the test bed runs the guest's own update-grub once before
    # anything is measured, so every config it tunes from is update-grub's.
    cat > $R/boot/grub/grub.cfg <<CFG
set timeout=0
menuentry 'Debian GNU/Linux' {
    search --no-floppy --label root --set=root
    linux /boot/vmlinuz-$KVER root=LABEL=root ro console=ttyS0
    initrd /boot/initrd.img-$KVER
}
CFG
    # GRUB's EFI image with every module inside: it finds the root file system by label and
    # reads /boot/grub/grub.cfg from it, as the image grub-install makes does by UUID.
    printf 'insmod part_gpt\ninsmod ext2\nsearch --no-floppy --label root --set=root\nconfigfile ($root)/boot/grub/grub.cfg\n' > early.cfg
    grub-mkstandalone -O x86_64-efi -o esp/EFI/BOOT/BOOTX64.EFI "boot/grub/grub.cfg=early.cfg"
    ;;
esac

mkfs.vfat -F 32 -n ESP -C esp.img $((ESP_MB * 1024)) >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -i esp.img -s -Q esp/* ::/
truncate -s 3G root.img
mke2fs -q -t ext4 -L root -d $R root.img
ESP_S=$((ESP_MB * 2048)); ROOT_S=$(( $(stat -c %s root.img) / 512 ))
truncate -s $(( (2048 + ESP_S + ROOT_S + 2048) * 512 )) disk.raw
sfdisk -q disk.raw <<PT
label: gpt
start=2048, size=$ESP_S, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp
start=$((2048 + ESP_S)), size=$ROOT_S, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root
PT
dd if=esp.img of=disk.raw bs=1M seek=1 conv=notrunc,sparse status=none
dd if=root.img of=disk.raw bs=1M seek=$((1 + ESP_MB)) conv=notrunc,sparse status=none
# Older images of this variant are stale: keep only the new one.
rm -f "$VM_DIR"/image-"$VM_LOADER"-*.raw
mv disk.raw "$VM_IMAGE"
vm_log "image built in $(( $(date +%s) - t0 )) s: kernel $KVER, $(basename "$VM_IMAGE")"
