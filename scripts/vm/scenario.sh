#!/usr/bin/env bash
# The real-host proof, on one booted guest (VM_LOADER=bls|grub): the collection's own playbooks
# over ssh (user ops, become through sudo), as an operator runs them on a rack.
#
#   scripts/vm/scenario.sh            needs: make collection (binaries), make venv (ansible-core),
#                                     scripts/vm/deps.sh (qemu, OVMF, mmdebstrap, ...)
#
# Phases, each timed; any failed check stops the run with a message naming it, and the guest is
# always powered off (its qemu and supervisor ended) on the way out.
#   image        build the image (cached by a hash of its inputs), boot, wait for ssh
#   check        tune --check --diff changes nothing: files under /etc /boot /usr/local and every
#                run-time value lltune manages read the same before and after
#   kill (bls)   a tune killed mid-run (its module process killed in the guest) is rolled back
#                by the rollback playbook to the state before it
#   power-cut    tune without reboot, then the plug pulled at once: the guest boots with the
#                old or the new arguments (never neither), and rollback brings it back
#   gate (bls)   a config whose argument does not take effect (1 GiB pages on a CPU without them)
#                fails the health gate after the reboot, and the serial rollout stops there: the
#                next host of the rack is never touched
#   tune         tune with lltune_reboot: the reboot happens, the health gate passes, and after
#                the boot every setting holds: arguments and their effect, sysctls, units, huge
#                pages, THP, limits for a new login, IRQ affinity and NIC settings re-applied by
#                lltune-restore.service
#   again        tune again: changed=0
#   live         the live paths one by one: the hugepage shortfall, lltune validate
#   rollback     rollback with reboot: /proc/cmdline, every file and every value back to the start
#   daemons (bls) TuneD and chrony on a real systemd: the profile switched by tuned-adm while tuned
#                runs, a chrony source added and chronyd restarted onto it; tune again changes
#                nothing; rollback puts the profile back and chronyd back on its own sources
. "$(dirname "$0")/lib.sh"
COLLECTIONS=${VM_COLLECTIONS:-$VM_SRC/build/collections}
ANSIBLE_BIN=${ANSIBLE_BIN:-$VM_SRC/.venv/bin}
[ -x "$COLLECTIONS/ansible_collections/lltune/tuning/binaries/lltune_facts" ] \
    || { echo "scenario: no built collection under build/collections: run make collection" >&2; exit 1; }
[ -x "$ANSIBLE_BIN/ansible-playbook" ] || { echo "scenario: no ansible-playbook in $ANSIBLE_BIN: run make venv" >&2; exit 1; }
export LC_ALL=C.UTF-8 ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
# A guest under emulation on a busy machine can take over a minute to answer a new connection:
# ssh is retried (Ansible retries only when ssh itself fails, exit 255).
export ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_TIMEOUT=60 ANSIBLE_SSH_RETRIES=3 ANSIBLE_RETRY_FILES_ENABLED=false
export ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=900s -o ServerAliveInterval=10 -o ServerAliveCountMax=12"
export ANSIBLE_SSH_CONTROL_PATH_DIR="$VM_RUN/cp" ANSIBLE_LOCAL_TEMP="$VM_RUN/tmp"
PLAYBOOKS="$COLLECTIONS/ansible_collections/lltune/tuning/playbooks"
HOST=vm-$VM_LOADER
INV="$VM_RUN/inventory"
T0=$(date +%s); LAST=$T0
phase() { local now; now=$(date +%s); echo "### $VM_LOADER: $1: $((now - LAST)) s (total $((now - T0)) s)"; LAST=$now; }
fail() { echo "FAIL ($VM_LOADER): $*" >&2; exit 1; }
cleanup() { "$VM_HERE/vm.sh" stop 300 >/dev/null 2>&1 || true; }
trap cleanup EXIT

# The rack inventory, as an operator writes one: the host's address and login, and its config
# kept as a file beside the inventory (configs/<host>.yml), read with a lookup. The second host,
# next-host, is a simulated one (a copy of a real server's tree, local connection): it stands
# for the rest of the rack in the serial-rollout check.
inventory() {
    rm -rf "$INV"; mkdir -p "$INV/configs" "$VM_RUN/cp" "$VM_RUN/tmp"
    cp "$VM_HERE/configs/$1.yml" "$INV/configs/$HOST.yml"
    cat > "$INV/hosts.yml" <<INVENTORY
all:
  vars:
    lltune_config: "{{ lookup('ansible.builtin.file', inventory_dir ~ '/configs/' ~ inventory_hostname ~ '.yml') | ansible.builtin.from_yaml }}"
  hosts:
    $HOST:
      ansible_host: 127.0.0.1
      ansible_port: $VM_SSH_PORT
      ansible_user: $VM_USER
      ansible_become: true
      ansible_ssh_private_key_file: $VM_KEY
      ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
      ansible_python_interpreter: /usr/bin/python3
      lltune_reboot_timeout: 1800
INVENTORY
}

# ansible-playbook with the inventory; the output goes to play-<name>.log and the screen.
play() {
    local name=$1; shift
    "$ANSIBLE_BIN/ansible-playbook" -i "$INV/hosts.yml" "$@" 2>&1 | tee "$VM_RUN/play-$name.log"
    return "${PIPESTATUS[0]}"
}
recap() { grep -E "^$1 +:" "$VM_RUN/play-$2.log" | tail -1; }
state() { vm_ssh "$(cat "$VM_HERE/guest-state.sh")" > "$VM_RUN/state-$1.txt"; }
# While irqbalance runs it moves IRQs whenever it likes: their CPUs are compared only where it
# is stopped in both readings (lltune stops it; rollback starts it again).
comparable() {
    if grep -q '^unit irqbalance .* active$' "$VM_RUN/state-$1.txt"; then grep -v '^irq virtio' "$VM_RUN/state-$1.txt"
    else cat "$VM_RUN/state-$1.txt"; fi
}
# On a difference: the diff, then one line naming what differs (CI shows an output's tail).
same_state() {
    diff -u <(comparable "$1") <(comparable "$2") > "$VM_RUN/diff-$1-$2.txt" && return
    cat "$VM_RUN/diff-$1-$2.txt" >&2
    echo "differs ($1 -> $2): $(grep -E '^[-+][a-z]' "$VM_RUN/diff-$1-$2.txt" | grep -vE '^(---|\+\+\+) ' \
        | awk '{k=$1; sub(/^[-+]/, "", k); print k" "$2}' | sort -u | tr '\n' ';')" >&2
    fail "$3"
}
# What a play's task did to the host: ok, changed, skipping or failed (the last such line).
task_status() { grep -A3 "^TASK \[.*$2" "$VM_RUN/play-$1.log" | grep -oE '^(ok|changed|skipping|fatal|failed):' | tail -1; }
val() { grep -E "^$1( |$)" "$VM_RUN/state-$2.txt" | head -1 | cut -d' ' -f$(( $(echo "$1" | wc -w) + 1 ))-; }
expect() { # expect KEY STATE WANT
    local got; got=$(val "$1" "$2")
    [ "$got" = "$3" ] || fail "after $2: '$1' is '$got', expected '$3'"
}
backup_id() { echo "vm-$1-$(date -u +%Y%m%dT%H%M%SZ)"; }

"$VM_HERE/build-image.sh"
"$VM_HERE/vm.sh" start
"$VM_HERE/vm.sh" wait 1800
inventory tune
if [ "$VM_LOADER" = grub ]; then
    # The first boot came from the image's hand-written grub.cfg: make it update-grub's own and
    # boot from it, so that the arguments lltune starts from are the ones update-grub writes.
    vm_ssh update-grub >/dev/null 2>&1 || fail "update-grub in the guest"
    "$VM_HERE/vm.sh" reboot 1800
fi
vm_ssh 'systemctl is-system-running --wait' >/dev/null || true
state start; sleep 2; state start2
same_state start start2 "two readings of the idle guest differ: the state digest is not stable"
phase image

play facts "$PLAYBOOKS/facts.yml" || fail "facts playbook"
play check "$PLAYBOOKS/tune.yml" --check --diff -e lltune_reboot=true || fail "tune --check --diff"
grep -q 'isolcpus' "$VM_RUN/play-check.log" || fail "the --check --diff output shows no kernel argument change"
state after-check
same_state start after-check "tune --check --diff changed the guest"
vm_ssh 'test ! -e /var/lib/lltune/backups' || fail "tune --check made a backup folder"
phase check

if [ "$VM_LOADER" = bls ]; then
    # A tune killed mid-run: the controller (ansible-playbook and its ssh) is killed when the
    # memory step starts, the kernel arguments, sysctls and CPU steps done; whatever module
    # still runs in the guest finishes or dies with it. Rollback of that run's id brings the
    # guest back to the state before it.
    ID=$(backup_id kill)
    setsid "$ANSIBLE_BIN/ansible-playbook" -i "$INV/hosts.yml" "$PLAYBOOKS/tune.yml" \
        -e lltune_backup_id="$ID" > "$VM_RUN/play-kill.log" 2>&1 &
    pid=$!
    for _ in $(seq 1800); do
        # The real pass's task, not the plan pass's ("Memory (...) (plan)", in check mode).
        grep -q 'TASK \[lltune.tuning.tune : Memory (THP, huge pages, KSM, swap)\]' "$VM_RUN/play-kill.log" && break
        kill -0 $pid 2>/dev/null || { cat "$VM_RUN/play-kill.log"; fail "kill: the tune play ended before the memory step"; }
        sleep 1
    done
    kill -9 -- -$pid 2>/dev/null || true; wait $pid 2>/dev/null || true
    for _ in $(seq 300); do vm_ssh 'pgrep -f "lltune_[a-z]+( |$)"' >/dev/null || break; sleep 1; done
    vm_ssh "test -d /var/lib/lltune/backups/$ID" || fail "kill: the killed run wrote no backup bundle (killed too early to prove anything)"
    state killed
    ! diff -q "$VM_RUN/state-start.txt" "$VM_RUN/state-killed.txt" >/dev/null || fail "kill: the killed run changed nothing"
    play kill-rollback "$PLAYBOOKS/rollback.yml" -e lltune_backup_id="$ID" || fail "rollback of the killed run"
    state kill-rolled-back
    same_state start kill-rolled-back "rollback of the killed run did not restore the state before it"
    phase "kill mid-run + rollback"
fi

# The plug pulled right after the boot configuration is written, before any reboot: the
# guest boots with the old or the new arguments, whole, and rollback brings it back.
ID=$(backup_id cut)
play cut "$PLAYBOOKS/tune.yml" -e lltune_backup_id="$ID" || fail "tune without reboot (power-cut case)"
"$VM_HERE/vm.sh" power-cut
"$VM_HERE/vm.sh" power-on
"$VM_HERE/vm.sh" wait 1800
running=$(vm_ssh 'systemctl is-system-running --wait' || true)
[ "$running" = running ] || fail "power cut: after the boot systemd is '$running' ($(vm_ssh 'systemctl --failed --no-legend' | tr '\n' ' '))"
state cut
cmdline_now=$(val cmdline cut)
if [ "$cmdline_now" = "$(val cmdline start)" ]; then booted=old
elif echo " $cmdline_now " | grep -q ' isolcpus=managed_irq,domain,1 ' && echo " $cmdline_now " | grep -q ' nohz_full=1 '; then booted=new
else fail "power cut: the guest booted with neither the old nor the new arguments: $cmdline_now"; fi
echo "power cut: booted with the $booted arguments"
play cut-rollback "$PLAYBOOKS/rollback.yml" -e lltune_reboot=true -e lltune_backup_id="$ID" || fail "rollback after the power cut"
state cut-rolled-back
same_state start cut-rolled-back "rollback after the power cut did not bring the guest back to the start (booted with the $booted arguments; the rollback's reboot task: $(task_status cut-rollback 'Reboot where'))"
phase "power cut + boot + rollback"

if [ "$VM_LOADER" = bls ]; then

    # The health gate refuses an argument whose effect is not there after the boot, and the
    # serial rollout stops at that host: next-host (a simulated host after it) is not touched.
    ID=$(backup_id gate)
    inventory gate
    next="$VM_RUN/next-host"; rm -rf "$next"; cp -a "$VM_SRC/tests/fixtures/hosts/debian12-vm" "$next"
    cat >> "$INV/hosts.yml" <<INVENTORY
    next-host:
      ansible_connection: local
      ansible_python_interpreter: "{{ ansible_playbook_python }}"
      lltune_root: $next
      lltune_config: null
      lltune_generate: true
INVENTORY
    digest() { (cd "$next" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
    before=$(digest)
    if play gate "$PLAYBOOKS/tune.yml" -e lltune_reboot=true -e lltune_serial=1 -e lltune_backup_id="$ID"; then
        fail "gate: the tune play passed a host whose 1 GiB pages never came"
    fi
    grep -q 'health gate failed' "$VM_RUN/play-gate.log" || fail "gate: the play failed, but not at the health gate"
    grep -q '1048576' "$VM_RUN/play-gate.log" || fail "gate: the gate's message does not name the missing 1048576 kB pool"
    recap "$HOST" gate | grep -q 'failed=1' || fail "gate: $HOST is not failed: $(recap "$HOST" gate)"
    ! grep -qE '^next-host +:' "$VM_RUN/play-gate.log" || fail "gate: the rollout went on to next-host: $(recap next-host gate)"
    [ "$(digest)" = "$before" ] || fail "gate: next-host's tree changed"
    inventory tune
    play gate-rollback "$PLAYBOOKS/rollback.yml" -e lltune_backup_id="$ID" || fail "rollback of the gate run"
    phase "health gate refuses + serial rollout stops"
fi

ID=$(backup_id tune)
play tune "$PLAYBOOKS/tune.yml" -e lltune_reboot=true -e lltune_backup_id="$ID" || fail "tune with reboot"
grep -q 'Reboot where kernel arguments wait' "$VM_RUN/play-tune.log" || fail "tune: no reboot task ran"
[ -z "$(grep -A3 'TASK \[lltune.tuning.tune : Reboot' "$VM_RUN/play-tune.log" | grep -E '^skipping')" ] || fail "tune: the reboot was skipped"
state tuned
expect cpu.isolated tuned 1
expect cpu.nohz_full tuned 1
for a in isolcpus=managed_irq,domain,1 nohz_full=1 rcu_nocbs=1 irqaffinity=0 skew_tick=1 nosoftlockup; do
    grep -qE "^cmdline .*(^| )$a( |$)" "$VM_RUN/state-tuned.txt" || fail "after the boot, /proc/cmdline lacks $a"
done
expect "sysctl kernel.timer_migration" tuned 0
expect "sysctl vm.swappiness" tuned 10
expect "sysctl vm.stat_interval" tuned 10
expect "sysctl net.core.busy_poll" tuned 50
expect "sysctl net.core.busy_read" tuned 50
expect "sysctl kernel.soft_watchdog" tuned 0
expect thp tuned "always madvise [never]"
expect "hugepages node0" tuned 64
expect "unit irqbalance" tuned "disabled inactive"
expect "unit lltune-restore" tuned "enabled active"
expect "nic enp0s2 gro" tuned off
expect "nic enp0s2 combined" tuned 1
expect "nic enp0s2 rps" tuned 0
for q in virtio1-input.0 virtio1-output.0; do expect "irq $q" tuned 0; done
expect workqueue tuned 1
vm_ssh 'grep Cpus_allowed_list /proc/1/status' | grep -qE ':\s+0$' || fail "systemd (PID 1) is not on CPU 0 (CPUAffinity=)"
vm_ssh 'systemctl show -p Result --value lltune-restore.service' | grep -qx success || fail "lltune-restore.service did not succeed"
# limits.d rules apply to a new login of a member of the group.
# Its own connection (ssh takes an option's first value, so vm_ssh_opts' ControlPath would reuse
# ops's session).
memlock=$(ssh -p "$VM_SSH_PORT" -i "$VM_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o ConnectTimeout=60 -o BatchMode=yes trader@127.0.0.1 'ulimit -l') || fail "ssh as trader"
[ "$memlock" = unlimited ] || fail "a new login of trader has memlock '$memlock', expected unlimited"
phase tune

play again "$PLAYBOOKS/tune.yml" -e lltune_reboot=true -e lltune_backup_id="$(backup_id again)" || fail "tune again"
recap "$HOST" again | grep -q 'changed=0 ' || fail "tune again: $(recap "$HOST" again)"
phase again

# The live paths one at a time. lltune validate: the CLI the role installed, cyclictest from
# rt-tests, on the isolated and the housekeeping CPU (numbers from an emulated CPU mean nothing;
# the flow must work and give a result per CPU).
vm_ssh '/usr/local/sbin/lltune validate --cpus all --duration 5 --save /root/latency.json' > "$VM_RUN/validate.txt" \
    || { cat "$VM_RUN/validate.txt"; fail "lltune validate"; }
grep -qE '^\| 0 \| housekeeping \| [0-9]+ ' "$VM_RUN/validate.txt" && grep -qE '^\| 1 \| isolated \| [0-9]+ ' "$VM_RUN/validate.txt" \
    || { cat "$VM_RUN/validate.txt"; fail "lltune validate: no measurement for housekeeping CPU 0 and isolated CPU 1"; }
vm_ssh 'test -s /root/latency.json' || fail "lltune validate --save wrote nothing"
# The huge page shortfall: with 2.3 GB held by a process (no swap), asking lltune_memory for 600
# pages of 2 MiB (within the OS reserve it checks) leaves the kernel short; the module fails,
# names the shortfall, and puts the pool back where it was.
vm_ssh 'systemd-run --quiet --unit=lltune-vm-hog python3 -c "import time; x = b\"x\" * 2300000000; time.sleep(900)"'
for _ in $(seq 120); do
    [ "$(vm_ssh 'awk "/MemAvailable/{print \$2}" /proc/meminfo')" -lt 1400000 ] && break; sleep 2
done
"$ANSIBLE_BIN/ansible" -i "$INV/hosts.yml" "$HOST" -m lltune.tuning.lltune_memory \
    -a '{"hugepages": {"2048": {"0": 600}}, "backup_id": "vm-shortfall"}' > "$VM_RUN/shortfall.txt" 2>&1 \
    && { cat "$VM_RUN/shortfall.txt"; fail "shortfall: lltune_memory passed with memory held"; }
vm_ssh 'systemctl stop lltune-vm-hog' || true
grep -qi 'allocated' "$VM_RUN/shortfall.txt" || { cat "$VM_RUN/shortfall.txt"; fail "shortfall: the failure does not say what the kernel allocated"; }
[ "$(vm_ssh 'cat /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages')" = 64 ] \
    || fail "shortfall: the pool was not put back to 64 pages"
phase "live paths (validate, hugepage shortfall)"

play rollback "$PLAYBOOKS/rollback.yml" -e lltune_reboot=true -e lltune_backup_id="$ID" || fail "rollback"
state rolled-back
same_state start rolled-back "rollback with reboot did not bring the guest back to the start"
phase rollback

if [ "$VM_LOADER" = bls ]; then
    # The daemons lltune drives through systemd, live: TuneD (running, so `tuned-adm profile`
    # switches it) and chrony (running, so it must be restarted to read lltune's drop-in, and
    # restarted again when rollback takes the drop-in away).
    tuned_profile() { vm_ssh 'tuned-adm active' 2>/dev/null | sed -n 's/^Current active profile: //p'; }
    chrony_sources() { vm_ssh 'chronyc -n -c sources' 2>/dev/null | cut -d, -f3 | sort | tr '\n' ' '; }
    vm_ssh 'systemctl start tuned.service' || fail "daemons: tuned does not start"
    for _ in $(seq 150); do [ -n "$(tuned_profile)" ] && break; sleep 2; done
    profile_start=$(tuned_profile)
    [ -n "$profile_start" ] || fail "daemons: tuned runs no profile after its start"
    [ "$profile_start" != latency-performance ] || fail "daemons: tuned already runs latency-performance (nothing to prove)"
    sources_start=$(chrony_sources)
    ! echo " $sources_start " | grep -q ' 192.0.2.10 ' || fail "daemons: chrony already has 192.0.2.10"
    state daemons-start
    inventory services
    ID=$(backup_id daemons)
    play daemons "$PLAYBOOKS/tune.yml" -e lltune_backup_id="$ID" || fail "tune with services.tuned and time_sync"
    [ "$(tuned_profile)" = latency-performance ] || fail "daemons: tuned runs '$(tuned_profile)', expected latency-performance"
    [ "$(vm_ssh 'cat /etc/tuned/profile_mode')" = manual ] || fail "daemons: /etc/tuned/profile_mode is not manual"
    vm_ssh 'grep -q "^server 192.0.2.10 iburst" /etc/chrony/conf.d/lltune.conf' || fail "daemons: no server line in chrony's drop-in"
    echo " $(chrony_sources) " | grep -q ' 192.0.2.10 ' || fail "daemons: chronyd does not use lltune's source (sources: $(chrony_sources))"
    play daemons-again "$PLAYBOOKS/tune.yml" -e lltune_backup_id="$(backup_id daemons-again)" || fail "daemons: tune again"
    recap "$HOST" daemons-again | grep -q 'changed=0 ' || fail "daemons: tune again: $(recap "$HOST" daemons-again)"
    play daemons-rollback "$PLAYBOOKS/rollback.yml" -e lltune_backup_id="$ID" || fail "daemons: rollback"
    for _ in $(seq 150); do [ "$(tuned_profile)" = "$profile_start" ] && break; sleep 2; done
    [ "$(tuned_profile)" = "$profile_start" ] || fail "daemons: after rollback tuned runs '$(tuned_profile)', expected '$profile_start'"
    [ "$(chrony_sources)" = "$sources_start" ] || fail "daemons: after rollback chronyd's sources are '$(chrony_sources)', expected '$sources_start'"
    state daemons-rolled-back
    same_state daemons-start daemons-rolled-back "daemons: rollback did not bring the guest back to where tuned was started"
    phase "daemons: TuneD profile and chrony live, again, rollback"
fi

"$VM_HERE/vm.sh" stop 300
trap - EXIT
phase "powered off"
echo "PASS ($VM_LOADER): $(( $(date +%s) - T0 )) s"
