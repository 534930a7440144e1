//! lltune: low-latency tuning of Linux trading servers, as Ansible binary modules and a CLI.

pub mod cli; //          `lltune` subcommands: scan, capture (more to come); calls modules and facts
pub mod capture; //      `lltune capture`: a .tar.gz of exactly the files a scan reads
pub mod cpulist; //      CPU lists and masks in the kernel's text forms
pub mod facts; //        discovery of one host, subsystem by subsystem
pub mod host; //         the target host under a `root` prefix: the only user of std::fs for targets
pub mod modules; //      one file per Ansible module
pub mod protocol; //     Ansible's binary-module protocol: args in, one JSON object out
pub mod sys; //          system interfaces that are not files: the SIOCETHTOOL ioctl
