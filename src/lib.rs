//! lltune: low-latency tuning of Linux trading servers, as Ansible binary modules and a CLI.

pub mod analysis; //     recommendations from facts, and the core plan gen-config proposes
pub mod apply; //        `lltune apply` / `lltune rollback`: a config carried out through the change modules
pub mod audit; //        `lltune audit`: a config checked alone and against a host's facts
pub mod boot; //         kernel arguments in the boot configuration: GRUB defaults, BLS entries, /etc/kernel/cmdline
pub mod capture; //      `lltune capture`: a .tar.gz of exactly the files a scan reads
pub mod cli; //          `lltune` subcommands: scan, capture (more to come); calls modules and facts
pub mod config; //       the config file (version 1): the one strict reader, with dotted-path issues
pub mod cpulist; //      CPU lists and masks in the kernel's text forms
pub mod facts; //        discovery of one host, subsystem by subsystem
pub mod gen_config; //   `lltune gen-config`: a commented config for one machine, with its core plan
pub mod host; //         the target host under a `root` prefix: the only user of std::fs for targets
pub mod journal; //      backup bundles of previous states, and the one write path of changing modules
pub mod modules; //      one file per Ansible module
pub mod protocol; //     Ansible's binary-module protocol: args in, one JSON object out
pub mod report; //       the text summary and markdown report of `lltune scan`
pub mod sys; //          system interfaces that are not files: the SIOCETHTOOL ioctl
