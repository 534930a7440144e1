//! One integration-test binary (as ripgrep does): each module below is one area.

mod support;

mod ansible; //        real ansible-playbook runs and ansible-doc on the collection
mod ethtool_live; //   SIOCETHTOOL on a veth pair inside a network namespace
mod facts_module; //   lltune_facts through its real binary: exact JSON results
mod real_dumps; //     every real dump gives the facts its peer tool reported
mod scan_cli; //       lltune scan / capture as a user runs them
mod facts_doc; //      every emitted field is documented in docs/facts.md
