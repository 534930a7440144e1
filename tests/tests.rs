//! One integration-test binary (as ripgrep does): each module below is one area.

mod support;

mod analysis;
mod ansible; //        real ansible-playbook runs and ansible-doc on the collection
mod change_ansible; //    the change modules through ansible-doc and ansible-playbook on a fixture root
mod change_cpu; //       lltune_cpu: intel_pstate and acpi-cpufreq trees, refusals, C-states, reapply
mod change_kernel_args; // lltune_kernel_args: BLS, classic GRUB2 (BIOS/UEFI), Debian; safety refusals
mod change_memory; //    lltune_memory: THP, huge pages per node and the OS reserve, KSM, swap, reapply
mod change_rollback; //   lltune_rollback: every fixture back byte for byte after a play of both modules
mod change_sysctl; //    lltune_sysctl: fixture trees, check mode, failures midway, a real kernel in a netns
mod contract; //         the contract every changing module keeps (one harness), and the attacker cases
mod ethtool_live; //   SIOCETHTOOL on a veth pair inside a network namespace
mod facts_doc; //      every emitted field is documented in docs/facts.md
mod facts_module; //   lltune_facts through its real binary: exact JSON results
mod irq_dumps; //      IRQ counts and affinities on the real dumps agree with their peers
mod nic_dumps; //      NICs on the real dumps: drivers, NUMA nodes, virtual netdevs, PCI-only NICs
mod real_dumps; //     every real dump gives the facts its peer tool reported
mod scan_cli; //       lltune scan / capture as a user runs them //       recommendations, reports, gen-config and audit on the real dumps and bad configs
