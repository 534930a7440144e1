//! One integration-test binary (as ripgrep does): each module below is one area.

mod support;

mod analysis; //       recommendations, reports, gen-config and audit on the real dumps, the seed's golden host and bad configs
mod ansible; //        real ansible-playbook runs and ansible-doc on the collection
mod apply_sections; // lltune apply: network and irq sections, gen-config of the dumps, the rack hosts (vma, time_sync, TuneD)
mod archive; //        lltune scan --root X.tar.gz on hostile archives: bounds, containment, the temporary folder after kills
mod binaries; //      scripts/check_binaries.py (glibc 2.17, 1 MiB per module) fails where it must
mod bytes_exact; //      byte-exact edits, generated: untouched lines keep their bytes, diffs escape, rollback restores
mod capture_apply; //    lltune capture of a host to tune: apply on the capture changes what it changes on the host
mod capture_secrets; //  lltune capture of a host whose files hold secrets in every syntax: none in the archive, same facts, same changes
mod change_ansible; //    the change modules through ansible-doc and ansible-playbook on a fixture root
mod change_bypass; //   lltune_bypass: Onload/VMA/XLIO profiles on trees with and without the stacks, a real sh, apply and audit
mod change_cpu; //         lltune_cpu: intel_pstate and acpi-cpufreq trees, refusals, C-states, reapply
mod change_irq; //         lltune_irq: the R640 dump with the rules, managed IRQs, offline CPUs, refusals
mod change_kernel_args; // lltune_kernel_args: BLS, classic GRUB2 (BIOS/UEFI), Debian; safety refusals
mod change_limits; //      lltune_limits: pam_limits precedence in conflicts, refusals, rollback
mod change_memory; //      lltune_memory: THP, huge pages per node and the OS reserve, KSM, swap, reapply
mod change_nic; //         lltune_nic: a veth pair in a network namespace, refusals, selection, journal entries
mod change_rollback; //   lltune_rollback: every fixture back byte for byte after a play of both modules
mod change_services; //   lltune_services: unit links as systemctl writes them, refusals, rollback
mod change_sysctl; //    lltune_sysctl: fixture trees, check mode, failures midway, a real kernel in a netns
mod change_threads; //   lltune_threads: the test's own processes in a PID namespace, a fixture tree's /proc, refusals
mod change_timesync; //  lltune_timesync: chrony and ptp4l on a fixture tree, refusals, rollback, the real chronyd/ptp4l parsers
mod config_reader; // the config reader's answer to every field given every kind of value, pinned
mod contract; //         the contract every changing module keeps (one harness), and the attacker cases
mod docs_cover; //     docs/operations.md and both READMEs name every shipped module and config section
mod ethtool_live; //   SIOCETHTOOL on a veth pair inside a network namespace
mod export_tuned; //   lltune export-tuned: the TuneD profile read back by TuneD's parser holds what apply would set
mod facts_doc; //      every emitted field is documented in docs/facts.md
mod facts_module; //   lltune_facts through its real binary: exact JSON results
mod fleet_playbooks; // the collection's playbooks on a 3-host simulated rack: check, apply, idempotence, rollback, serial stop, health gate
mod fleet_report; //   lltune report / lltune_report: many hosts' facts → fleet.json, .csv, .md, lltune.prom
mod irq_dumps; //      IRQ counts and affinities on the real dumps agree with their peers
mod latency; //       lltune validate and lltune_latency: cyclictest parsed, percentiles, compare table and SVG, Ansible
mod nic_dumps; //      NICs on the real dumps: drivers, NUMA nodes, virtual netdevs, PCI-only NICs
mod persist; //        persist: true, a simulated reboot, lltune reapply, rollback of the persistence
mod policy_model; // the kernel-argument policy against a model of the kernel's, systemd's and dracut's parsers, generated spellings
mod readers; //        the shared facts readers on the real dumps and on generated input (sysctl names, ...)
mod readme_rack; //    the README's rack example (examples/rack) run as written: facts, report, audit, preview, canary tune, rollback
mod real_dumps; //     every real dump gives the facts its peer tool reported
mod scan_cli; //       lltune scan / capture as a user runs them
mod trail; //          the audit trail: each change and each revert to syslog (a socket the test owns), install-cli, check mode and no_log, lltune -v
