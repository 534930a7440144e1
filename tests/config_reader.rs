//! The config reader's answers, pinned: every field of every section given every kind of
//! wrong value (and the right shapes around it), missing required keys, unknown keys, and the
//! special readers (kernel arguments, `network.sysctl`, `per_node`, `rdma.devices`). Each line
//! of `tests/fixtures/config-reader.golden` is one document and what `config::parse`
//! says of it (`field: message`, or `ok`). A change of wording or of a field path shows up as
//! a reviewed diff of that file; `LLTUNE_UPDATE_PINS=1` rewrites it.

use std::path::Path;

use lltune::config;

/// Every field below the top: its dotted path (list items as `[0]`). The sections themselves
/// (`config::SECTIONS`) are tried too.
const FIELDS: &[&str] = &[
    "metadata.generated_at",
    "metadata.host",
    "metadata.kernel",
    "metadata.tool_version",
    "metadata.source",
    "hardware.cpu_model",
    "hardware.vendor",
    "hardware.sockets",
    "hardware.cores_per_socket",
    "hardware.threads_per_core",
    "hardware.online_cpus",
    "hardware.numa_nodes",
    "hardware.nics",
    "hardware.nics[0].name",
    "hardware.nics[0].driver",
    "hardware.nics[0].pci_address",
    "hardware.nics[0].numa_node",
    "hardware.nics[0].speed_mbps",
    "cpu.governor",
    "cpu.governor.target",
    "cpu.isolate_cores",
    "cpu.turbo",
    "cpu.cstate_limit",
    "cpu.epp",
    "kernel.cmdline",
    "kernel.cmdline.isolcpus",
    "kernel.cmdline.nosoftlockup",
    "kernel.extra_args",
    "kernel.extra_args.my.arg",
    "kernel.sysctl",
    "kernel.sysctl.timer_migration",
    "kernel.sysctl.hung_task_timeout_secs",
    "kernel.sysctl.nmi_watchdog",
    "kernel.sysctl.sched_rt_runtime_us",
    "memory.thp_runtime",
    "memory.swap_disable",
    "memory.numa_balancing",
    "memory.ksm",
    "memory.swappiness",
    "memory.dirty_ratio",
    "memory.dirty_background_ratio",
    "memory.dirty_expire_centisecs",
    "memory.dirty_writeback_centisecs",
    "memory.stat_interval",
    "memory.zone_reclaim_mode",
    "memory.min_free_kbytes",
    "memory.overcommit_memory",
    "memory.max_map_count",
    "memory.hugepages",
    "memory.hugepages.size_kb",
    "memory.hugepages.total",
    "memory.hugepages.per_node",
    "memory.hugepages.per_node.node0",
    "memory.mlock",
    "memory.mlock.enabled",
    "memory.mlock.user",
    "memory.mlock.soft",
    "memory.mlock.hard",
    "memory.mlock.max_map_count",
    "memory.limits",
    "memory.limits.nofile",
    "memory.limits.nproc",
    "memory.limits.rtprio",
    "network.defaults",
    "network.defaults.disable_gro",
    "network.defaults.disable_lro",
    "network.defaults.disable_tso",
    "network.defaults.disable_gso",
    "network.sysctl",
    "network.sysctl.busy_poll",
    "network.sysctl.net.core.somaxconn",
    "network.interfaces",
    "network.interfaces[0]",
    "network.interfaces[0].name",
    "network.interfaces[0].role",
    "network.interfaces[0].numa_node",
    "network.interfaces[0].driver",
    "network.interfaces[0].coalescing",
    "network.interfaces[0].coalescing.rx_usecs",
    "network.interfaces[0].coalescing.tx_usecs",
    "network.interfaces[0].coalescing.adaptive_rx",
    "network.interfaces[0].coalescing.adaptive_tx",
    "network.interfaces[0].rings",
    "network.interfaces[0].rings.rx",
    "network.interfaces[0].rings.tx",
    "network.interfaces[0].offloads",
    "network.interfaces[0].offloads.gro",
    "network.interfaces[0].offloads.lro",
    "network.interfaces[0].offloads.tso",
    "network.interfaces[0].offloads.gso",
    "network.interfaces[0].flow_control",
    "network.interfaces[0].flow_control.rx",
    "network.interfaces[0].flow_control.tx",
    "network.interfaces[0].channels",
    "network.interfaces[0].channels.combined",
    "network.interfaces[0].channels.rx",
    "network.interfaces[0].channels.tx",
    "irq.manual_affinity",
    "irq.manual_affinity[0]",
    "irq.manual_affinity[0].match",
    "irq.manual_affinity[0].cpus",
    "irq.avoid_cores_for_irqs",
    "irq.disable_rps",
    "irq.disable_rfs",
    "threads.isolate",
    "threads.housekeeping_cores",
    "threads.keep",
    "threads.keep[0]",
    "threads.priorities",
    "threads.priorities[0]",
    "threads.priorities[0].match",
    "threads.priorities[0].policy",
    "threads.priorities[0].priority",
    "time_sync.ntp",
    "time_sync.ptp",
    "time_sync.ptp.interface",
    "time_sync.ptp.phc2sys",
    "time_sync.ptp.domain",
    "time_sync.ptp.transport",
    "time_sync.ptp.delay_mechanism",
    "time_sync.clocksource",
    "time_sync.provider",
    "time_sync.servers",
    "time_sync.servers[0]",
    "time_sync.servers[0].hostname",
    "time_sync.servers[0].iburst",
    "time_sync.servers[0].prefer",
    "time_sync.servers[0].pool",
    "time_sync.servers[0].minpoll",
    "time_sync.servers[0].maxpoll",
    "time_sync.refclock",
    "time_sync.refclock.phc",
    "time_sync.refclock.poll",
    "time_sync.refclock.dpoll",
    "time_sync.refclock.offset_ns",
    "time_sync.refclock.precision_ns",
    "time_sync.refclock.prefer",
    "time_sync.refclock.tai",
    "time_sync.disable_competing",
    "services.irqbalance",
    "services.tuned",
    "safety.allow_grub_edit",
    "safety.allow_dangerous_mitigations",
    "onload.generate_profile",
    "onload.tuning_level",
    "onload.path",
    "onload.env_file",
    "onload.variables",
    "onload.variables.EF_RXQ_SIZE",
    "vma.generate_profile",
    "vma.tuning_level",
    "xlio.tuning_level",
    "xlio.variables",
    "rdma.devices",
    "rdma.devices[0]",
    "rdma.devices[0].name",
    "rdma.devices[0].numa_node",
];

/// Keys a mapping at this path needs besides the one under test.
fn required(path: &str) -> &'static [(&'static str, &'static str)] {
    match path {
        "hardware.nics[0]" | "network.interfaces[0]" | "rdma.devices[0]" => &[("name", "x0")],
        "cpu.governor" => &[("target", "performance")],
        "irq.manual_affinity[0]" => &[("match", "\"eth*\""), ("cpus", "1")],
        "threads.priorities[0]" => &[("match", "x"), ("policy", "fifo"), ("priority", "1")],
        _ => &[],
    }
}

/// Wrong (and some right) values of every YAML kind.
const VALUES: &[&str] = &[
    "[1, x]",
    "{a: 1}",
    "\"x\"",
    "\"1-3\"",
    "\"\"",
    "true",
    "5",
    "-3",
    "3.5",
    "99999999999999999999",
    "4294967296",
    "null",
    "!t 1",
    "performance",
];

/// Splits a dotted path into mapping keys and list items. `kernel.extra_args.my.arg` and
/// `network.sysctl.net.core.somaxconn` keep their dotted key whole.
fn segments(path: &str) -> Vec<String> {
    for whole in ["kernel.extra_args.", "network.sysctl."] {
        if let Some(rest) = path.strip_prefix(whole) {
            let mut s: Vec<String> = whole.trim_end_matches('.').split('.').map(String::from).collect();
            s.push(rest.to_string());
            return s;
        }
    }
    let mut out = Vec::new();
    for part in path.split('.') {
        match part.strip_suffix("[0]") {
            Some(name) => {
                out.push(name.to_string());
                out.push("[0]".to_string());
            }
            None => out.push(part.to_string()),
        }
    }
    out
}

/// The document (flow style) that puts `value` at `path`, with the required keys around it.
fn doc(path: &str, value: &str) -> String {
    let segs = segments(path);
    let mut v = value.to_string();
    for i in (0..segs.len()).rev() {
        if segs[i] == "[0]" {
            v = format!("[{v}]");
            continue;
        }
        let here: String = segs[..i]
            .iter()
            .map(|s| if s == "[0]" { "[0]".to_string() } else { format!(".{s}") })
            .collect::<String>()
            .trim_start_matches('.')
            .to_string();
        let mut items = vec![format!("{}: {v}", segs[i])];
        for (k, kv) in required(&here) {
            if *k != segs[i] {
                items.push(format!("{k}: {kv}"));
            }
        }
        v = format!("{{{}}}", items.join(", "));
    }
    // The version, unless it is under test.
    if path == "version" { v } else { format!("{{version: 1, {}", &v[1..]) }
}

/// Documents beyond field × value: shapes the generated ones do not reach.
const EXTRA: &[&str] = &[
    "",
    "5",
    "[1]",
    "version: 1",
    "version: 1\nbogus: 1",
    "version: 1\n5: 1",
    "version: 1\nnull: 1",
    "version: 1\n[a]: 1",
    "version: 1\nmetadata: {bogus: 1}",
    "version: 1\nhardware: {nics: [{driver: x}]}",
    "version: 1\ncpu: {governor: {}}",
    "version: 1\ncpu: {governor: {target: a, extra: b}}",
    "version: 1\nkernel: {cmdline: {isolcpu: 1}}",
    "version: 1\nkernel: {cmdline: {idle: null}}",
    "version: 1\nkernel: {cmdline: {idle: \"\"}}",
    "version: 1\nkernel: {cmdline: {nowatchdog: null, nosmt: \"\", idle: poll}}",
    "version: 1\nkernel: {cmdline: {5: x}}",
    "version: 1\nkernel: {cmdline: {isolcpus: [1, 2]}}",
    "version: 1\nkernel: {cmdline: {isolcpus: {a: 1}}}",
    "version: 1\nkernel: {cmdline: {isolcpus: false}}",
    "version: 1\nkernel: {cmdline: {isolcpus: 3.25}}",
    "version: 1\nkernel: {cmdline: {isolcpus: -4}}",
    "version: 1\nkernel: {extra_args: {a: null, b: \"\", c: 1, d: x}}",
    "version: 1\nkernel: {extra_args: {a: true}}",
    "version: 1\nkernel: {extra_args: {[a]: 1}}",
    "version: 1\nkernel: {cmdline: {mitigations: \"off\"}}",
    "version: 1\nkernel: {cmdline: {mitigations: \"off\"}}\nsafety: {allow_dangerous_mitigations: true}",
    "version: 1\nkernel: {extra_args: {init: /bin/sh}}",
    // The policy reads values as the kernel, systemd and dracut do (issue 17).
    "version: 1\nkernel: {cmdline: {skew_tick: \"1 init=/bin/sh\"}}",
    "version: 1\nkernel: {extra_args: {dyndbg: \"file a.c +p\", acpi_osi: \"Windows 2012\"}}",
    "version: 1\nkernel: {extra_args: {dyndbg: \"file a.c +p rd.break\"}}",
    "version: 1\nkernel: {cmdline: {mitigations: \"off,nosmt\"}, extra_args: {kpti: \"N\", retbleed: \"auto,off\"}}",
    "version: 1\nkernel: {extra_args: {module_blacklist: nvme, console: \"null\", systemd.volatile: state}}",
    "version: 1\nkernel: {extra_args: {rd.shell: \"0\", rd.break: null}}",
    "version: 1\nkernel: {cmdline: {isolcpus: 1}, extra_args: {isolcpus: 2}}",
    "version: 1\nmemory: {thp_runtime: sometimes}",
    "version: 1\nmemory: {thp_runtime: Never}",
    "version: 1\nmemory: {thp_runtime: madvise}",
    "version: 1\nmemory: {thp_runtime: !never null}",
    "version: 1\nmemory: {hugepages: {per_node: {0: 4, \"1\": 4, node2: 4}}}",
    "version: 1\nmemory: {hugepages: {per_node: {[0]: 4}}}",
    "version: 1\nmemory: {hugepages: {per_node: {-1: 4}}}",
    "version: 1\nmemory: {hugepages: {per_node: {1.5: 4}}}",
    "version: 1\nmemory: {hugepages: {per_node: {true: 4}}}",
    "version: 1\nmemory: {hugepages: {per_node: {null: 4}}}",
    "version: 1\nmemory: {hugepages: {per_node: {0: 4, \"0\": 5}}}",
    "version: 1\nmemory: {hugepages: {per_node: {node0: many}}}",
    "version: 1\nmemory: {hugepages: {per_node: [1]}}",
    "version: 1\nmemory: {hugepages: {size_kb: 2048, total: 8}}",
    "version: 1\nmemory: {hugepages: {size_kb: \"2048\"}}",
    "version: 1\nmemory: {swappiness: 0x10}",
    "version: 1\nmemory: {swappiness: 1e3}",
    "version: 1\nmemory: {swappiness: .inf}",
    "version: 1\nmemory: {min_free_kbytes: 18446744073709551615}",
    "version: 1\nmemory: {min_free_kbytes: 18446744073709551616}",
    "version: 1\nkernel: {sysctl: {sched_rt_runtime_us: -1}}",
    "version: 1\nkernel: {sysctl: {sched_rt_runtime_us: -9223372036854775809}}",
    "version: 1\nnetwork: {sysctl: {bogus_name: 1}}",
    "version: 1\nnetwork: {sysctl: {tcp_timestamps: false, busy_poll: 50, file_max: 2097152, net.core.dev_weight: 64}}",
    "version: 1\nnetwork: {sysctl: {5: 1}}",
    "version: 1\nnetwork: {sysctl: {busy_poll: null}}",
    "version: 1\nnetwork: {sysctl: {busy_poll: 1.5}}",
    "version: 1\nnetwork: {sysctl: {busy_poll: [1]}}",
    "version: 1\nnetwork: {interfaces: [{role: trading}]}",
    "version: 1\nnetwork: {interfaces: [{name: eth0, role: fast}]}",
    "version: 1\nnetwork: {interfaces: [{name: eth0, role: Trading}]}",
    "version: 1\nnetwork: {interfaces: [{name: eth0, role: trading}, {name: eth1, rings: {rx: x}}]}",
    "version: 1\nnetwork: {interfaces: [{name: eth0, bogus: 1}]}",
    "version: 1\nnetwork: {interfaces: [{name: eth0, coalescing: {bogus: 1}}]}",
    "version: 1\nnetwork: {interfaces: [{name: eth0, name: eth1}]}",
    "version: 1\nirq: {manual_affinity: [{cpus: 1}]}",
    "version: 1\nirq: {manual_affinity: [{match: x}]}",
    "version: 1\nirq: {manual_affinity: [{match: x, cpus: 1-x}]}",
    "version: 1\nirq: {manual_affinity: [{match: x, cpus: [1, x]}]}",
    "version: 1\nirq: {manual_affinity: [{match: x, cpus: [1, -1]}]}",
    "version: 1\nirq: {manual_affinity: [{match: x, cpus: 4294967296}]}",
    "version: 1\nirq: {manual_affinity: [{match: x, cpus: [4294967296]}]}",
    "version: 1\nirq: {manual_affinity: [{match: x, cpus: \"0-3,8\"}, {match: y, cpus: [0, 8]}]}",
    "version: 1\nonload: {tuning_level: ultra_low_latency}\nvma: {tuning_level: fastest}",
    "version: 1\nxlio: {tuning_level: balanced, variables: {XLIO_RX_POLL: -1, XLIO_X: \"a b\"}, path: /x.sh}",
    "version: 1\nonload: {variables: [EF_A]}",
    "version: 1\nrdma: {devices: [mlx5_0, {name: mlx5_1, numa_node: 1}]}",
    "version: 1\nrdma: {devices: [\"\"]}",
    "version: 1\nrdma: {devices: [\"  \"]}",
    "version: 1\nrdma: {devices: [{name: mlx5_0, port: 1}]}",
    "version: 1\nrdma: {devices: [{numa_node: 1}]}",
    "version: 1\nrdma: {devices: [5]}",
    "version: 1\nrecommendations: [{a: 1}, x]",
    "version: 1\nrecommendations: x",
    "version: 1\nsafety: null",
    "version: 1\nsafety: {}",
    "version: 1\ncpu: {turbo: off}",
    "version: 1\ncpu: {isolate_cores: 1-3,5}\nirq: {avoid_cores_for_irqs: 7}",
    "version: 1\nservices: {irqbalance: false, tuned: latency-performance}",
    "version: 1\ntime_sync: {ptp: {domain: 300}}",
    // time_sync for lltune_timesync (issue 19): both providers, the words ptp4l takes.
    "version: 1\ntime_sync: {provider: chrony, servers: [{hostname: ntp1, iburst: true}], refclock: {phc: ens1f0, offset_ns: -37000}}",
    "version: 1\ntime_sync: {provider: ptp4l, ptp: {interface: ens1f0, transport: L2, delay_mechanism: P2P}}",
    "version: 1\ntime_sync: {provider: ntpd}",
    "version: 1\ntime_sync: {ptp: {transport: udpv4}}",
    "version: 1\ntime_sync: {servers: [{iburst: true}]}",
    "version: 1\ntime_sync: {refclock: {phc: ens1f0, offset_ns: 0.5}}",
    "version: 1\nhardware: {nics: [{name: a, numa_node: -1, speed_mbps: 25000}]}",
    "version: 1\ncpu: &a {turbo: true}\nmemory: *a",
    "version: 1\ncpu: !custom {turbo: true}",
    // An IRQ pin by NIC or PCI device (issue 19).
    "version: 1\nirq: {manual_affinity: [{nic: ens1f0, cpus: 1}, {pci: \"0000:3B:00.0\", cpus: 2}]}",
    "version: 1\nirq: {manual_affinity: [{nic: ens1f0, match: \"x*\", cpus: 1}]}",
    "version: 1\nirq: {manual_affinity: [{nic: ens1f0, pci: \"0000:3b:00.0\", match: x, cpus: 1}]}",
    "version: 1\nirq: {manual_affinity: [{nic: \"a/b\", cpus: 1}]}",
    "version: 1\nirq: {manual_affinity: [{nic: \"\", cpus: 1}]}",
    "version: 1\nirq: {manual_affinity: [{nic: sixteen_chars_ab, cpus: 1}]}",
    "version: 1\nirq: {manual_affinity: [{nic: \"eth0:1\", cpus: 1}]}",
    "version: 1\nirq: {manual_affinity: [{nic: 5, cpus: 1}]}",
    "version: 1\nirq: {manual_affinity: [{pci: \"3b:00.0\", cpus: 1}]}",
    "version: 1\nirq: {manual_affinity: [{pci: \"0000:3b:00.8\", cpus: 1}]}",
    "version: 1\nirq: {manual_affinity: [{pci: ens1f0, cpus: 1}]}",
    "version: 1\nirq: {manual_affinity: [{pci: \"0000:3b:00.0\"}]}",
];

/// One line per document: the document (escaped) and each issue, or `ok`.
fn answer(text: &str) -> String {
    let (_, issues) = config::parse(text);
    let said: Vec<String> = issues.iter().map(|i| format!("{}: {}", i.field, i.message)).collect();
    let said = if said.is_empty() { "ok".to_string() } else { said.join(" | ") };
    format!("{text:?} => {said}")
}

#[test]
fn the_reader_says_what_it_said() {
    let mut lines = Vec::new();
    for path in FIELDS.iter().chain(config::SECTIONS) {
        for value in VALUES {
            lines.push(answer(&doc(path, value)));
        }
        // The key given twice, and an unknown key beside it.
        if let Some((parent, _)) = path.rsplit_once('.') {
            lines.push(answer(&doc(&format!("{parent}.zzz_unknown"), "1")));
        }
    }
    for extra in EXTRA {
        lines.push(answer(extra));
    }
    lines.dedup();
    let got = lines.join("\n") + "\n";
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config-reader.golden");
    if std::env::var_os("LLTUNE_UPDATE_PINS").is_some_and(|v| v == "1") {
        std::fs::write(&file, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (LLTUNE_UPDATE_PINS=1 writes it)", file.display()));
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .filter(|(w, g)| w != g)
            .take(15)
            .map(|(w, g)| format!("pinned: {w}\n   now: {g}"))
            .collect();
        panic!(
            "the config reader's answers changed ({} pinned lines, {} now); first differences:\n{}",
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn documents_put_the_value_where_the_path_says() {
    assert_eq!(doc("cpu.turbo", "true"), "{version: 1, cpu: {turbo: true}}");
    assert_eq!(
        doc("network.interfaces[0].rings.rx", "5"),
        "{version: 1, network: {interfaces: [{rings: {rx: 5}, name: x0}]}}"
    );
    assert_eq!(
        doc("network.sysctl.net.core.somaxconn", "5"),
        "{version: 1, network: {sysctl: {net.core.somaxconn: 5}}}"
    );
    assert_eq!(doc("version", "2"), "{version: 2}");
    // The generated documents are read as YAML (a broken one would pin only a YAML error).
    let (c, issues) = config::parse(&doc("irq.manual_affinity[0].cpus", "\"1-3\""));
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(c.irq.unwrap().manual_affinity[0].cpus.0.to_string(), "1-3");
}

#[test]
fn irq_pins_take_one_of_match_nic_or_pci() {
    use lltune::config::IrqTarget;
    let pins = |body: &str| config::parse(&format!("version: 1\nirq:\n  manual_affinity:\n{body}"));
    let (c, issues) = pins(
        "    - {match: \"mlx5_comp*\", cpus: 1}\n    - {nic: ens1f0, cpus: 2}\n    - {pci: \"0000:3B:00.0\", cpus: 3}\n",
    );
    assert!(issues.is_empty(), "{issues:?}");
    let targets: Vec<IrqTarget> = c.irq.unwrap().manual_affinity.into_iter().map(|p| p.target).collect();
    assert_eq!(
        targets,
        [
            IrqTarget::Match("mlx5_comp*".into()),
            IrqTarget::Nic("ens1f0".into()),
            // As sysfs spells it.
            IrqTarget::Pci("0000:3b:00.0".into()),
        ]
    );
    for (body, field, says) in [
        ("    - {match: x}\n    - {cpus: 1}\n", "irq.manual_affinity[0]", "missing field `cpus`"),
        ("    - {match: x, cpus: 1}\n    - {cpus: 1}\n", "irq.manual_affinity[1]", "give one of `match`"),
        ("    - {nic: eth0, pci: \"0000:3b:00.0\", cpus: 1}\n", "irq.manual_affinity[0]", "not `nic` and `pci`"),
        ("    - {nic: \"a b\", cpus: 1}\n", "irq.manual_affinity[0].nic", "not a network interface name"),
        ("    - {nic: a_very_long_name0, cpus: 1}\n", "irq.manual_affinity[0].nic", "not a network interface name"),
        ("    - {pci: \"3b:00.0\", cpus: 1}\n", "irq.manual_affinity[0].pci", "not a PCI address"),
        ("    - {pci: \"0000:3b:0.0\", cpus: 1}\n", "irq.manual_affinity[0].pci", "not a PCI address"),
    ] {
        let (_, issues) = pins(body);
        assert_eq!(issues.len(), 1, "{body}: {issues:?}");
        assert_eq!(issues[0].field, field, "{body}: {issues:?}");
        assert!(issues[0].message.contains(says), "{body}: {issues:?}");
    }
}
