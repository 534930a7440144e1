# Runs in the guest as root (scripts/vm/scenario.sh sends it over ssh): one line per file
# and per run-time value lltune manages, so that two readings compare with diff.
# Files: every regular file and symlink under /etc, /boot and /usr/local, with mode, owner and
# sha256 (symlinks: their target); the scenario first checks that two readings of the idle guest
# agree. IRQ affinity is read here always, and compared by scenario.sh only where irqbalance
# (which moves IRQs when it likes) is stopped.
export LC_ALL=C
python3 - <<'PY'
import hashlib, os, pwd, grp, stat
out = []
for top in ("/etc", "/boot", "/usr/local"):
    for d, dirs, files in os.walk(top):
        for name in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            p = os.path.join(d, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out.append(f"file {p} -> {os.readlink(p)}")
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()[:16]
                owner = f"{pwd.getpwuid(st.st_uid).pw_name}:{grp.getgrgid(st.st_gid).gr_name}"
                out.append(f"file {p} {stat.S_IMODE(st.st_mode):o} {owner} {h}")
print("\n".join(sorted(out)))
PY
echo "cmdline $(cat /proc/cmdline)"
for f in isolated nohz_full; do echo "cpu.$f $(cat /sys/devices/system/cpu/$f 2>/dev/null)"; done
for k in kernel.timer_migration kernel.nmi_watchdog kernel.soft_watchdog kernel.watchdog vm.swappiness \
    vm.stat_interval net.core.busy_poll net.core.busy_read; do
    echo "sysctl $k $(sysctl -n "$k" 2>/dev/null)"
done
echo "thp $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
for n in /sys/devices/system/node/node*; do
    echo "hugepages $(basename "$n") $(cat "$n"/hugepages/hugepages-2048kB/nr_hugepages)"
done
echo "irq default $(cat /proc/irq/default_smp_affinity)"
# The NICs' queue IRQs (virtioN-input.Q / -output.Q): their names and CPUs.
grep -E 'virtio[0-9]+-(input|output)' /proc/interrupts | while read -r irq rest; do
    irq=${irq%:}; echo "irq $(echo "$rest" | awk '{print $NF}') $(cat /proc/irq/$irq/smp_affinity_list)"
done | sort
for i in $(ls /sys/class/net | grep -v '^lo$'); do
    echo "nic $i gro $(ethtool -k "$i" | awk '/^generic-receive-offload:/{print $2}')"
    echo "nic $i combined $(ethtool -l "$i" 2>/dev/null | awk '/^Combined:/{c=$2} END{print c}')"
    echo "nic $i rps $(cat /sys/class/net/$i/queues/rx-0/rps_cpus)"
done
for u in irqbalance lltune-restore tuned chrony; do
    echo "unit $u $(systemctl is-enabled $u 2>/dev/null) $(systemctl is-active $u 2>/dev/null)"
done
echo "workqueue $(cat /sys/devices/virtual/workqueue/cpumask 2>/dev/null)"
