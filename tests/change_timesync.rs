//! lltune_timesync on a fixture tree (the seed's golden host: ens1f0 has PHC ptp0, ens5f0
//! none): chrony's drop-in in its confdir, ptp4l's file and lltune's units with their wants
//! links, competing units disabled, check mode, idempotence, refusals before any write,
//! rollback byte for byte; and what is written read by the real chronyd and ptp4l (Debian's
//! packages unpacked under the target folder, never installed).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::support::{self, host_fixture, run_module, tree_snapshot};

const WANTS: &str = "etc/systemd/system/multi-user.target.wants";

fn put(root: &Path, p: &str, text: &str) {
    let f = root.join(p.trim_start_matches('/'));
    fs::create_dir_all(f.parent().unwrap()).unwrap();
    fs::write(f, text).unwrap();
}

fn link(root: &Path, p: &str) -> Option<String> {
    fs::read_link(root.join(p.trim_start_matches('/'))).ok().map(|t| t.to_string_lossy().into_owned())
}

fn read(root: &Path, p: &str) -> Option<String> {
    fs::read_to_string(root.join(p.trim_start_matches('/'))).ok()
}

/// The golden host with Debian's chrony.conf (confdir) and a competing systemd-timesyncd
/// enabled; its chronyd.service is RHEL's name.
pub fn chrony_host() -> tempfile::TempDir {
    let d = host_fixture("seed-golden");
    let r = d.path();
    put(
        r,
        "/etc/chrony/chrony.conf",
        "confdir /etc/chrony/conf.d\npool 2.debian.pool.ntp.org iburst\nsourcedir /etc/chrony/sources.d\n",
    );
    fs::create_dir_all(r.join("etc/chrony/conf.d")).unwrap();
    put(r, "/usr/lib/systemd/system/systemd-timesyncd.service", "[Unit]\n[Install]\nWantedBy=sysinit.target\n");
    fs::create_dir_all(r.join("etc/systemd/system/sysinit.target.wants")).unwrap();
    std::os::unix::fs::symlink(
        "/usr/lib/systemd/system/systemd-timesyncd.service",
        r.join("etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service"),
    )
    .unwrap();
    d
}

/// The golden host with linuxptp's binaries and ens1f0's hardware timestamping in its
/// ethtool capture.
pub fn ptp_host() -> tempfile::TempDir {
    let d = host_fixture("seed-golden");
    let r = d.path();
    put(r, "/usr/sbin/ptp4l", "");
    put(r, "/usr/sbin/phc2sys", "");
    set_timestamping(
        r,
        "ens1f0",
        &["hardware-transmit", "software-transmit", "hardware-receive", "hardware-raw-clock"],
    );
    d
}

fn set_timestamping(root: &Path, ifname: &str, caps: &[&str]) {
    let p = root.join(format!("var/lib/lltune/capture/ethtool/{ifname}.json"));
    let mut v: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    v["timestamping"] = json!({"so_timestamping": caps, "tx_types": ["off", "on"], "rx_filters": ["none", "all"]});
    fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
}

fn with_root(args: &Value, root: &Path, extra: Value) -> Value {
    let mut a = args.clone();
    a["root"] = json!(root);
    for (k, v) in extra.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

const CHRONY_FILE: &str = "/etc/chrony/conf.d/lltune.conf";

#[test]
fn chrony_with_a_phc_refclock_on_a_tree_check_apply_again_roll_back() {
    let dir = chrony_host();
    let root = dir.path();
    let start = tree_snapshot(root);
    let args = json!({
        "provider": "chrony",
        "servers": [{"hostname": "ntp1.example.com", "iburst": true}, {"hostname": "10.0.0.1", "prefer": "yes", "minpoll": 4, "maxpoll": 6}],
        "refclock": {"phc": "ens1f0", "poll": 0, "dpoll": -2, "offset_ns": 37000, "prefer": true},
    });
    let (check, code) = run_module(
        "lltune_timesync",
        &with_root(&args, root, json!({"_ansible_check_mode": true, "_ansible_diff": true})),
    );
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["changed"], true);
    assert_eq!(tree_snapshot(root), start, "check mode wrote");
    let diffs = check["diff"].as_array().unwrap();
    assert_eq!(diffs[0]["after_header"], CHRONY_FILE, "{check}");
    assert!(
        diffs[0]["after"]
            .as_str()
            .unwrap()
            .contains("refclock PHC /dev/ptp0 poll 0 dpoll -2 offset 0.000037000 prefer\n")
    );

    let (v, code) = run_module("lltune_timesync", &with_root(&args, root, json!({"backup_id": "t1"})));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["config_file"], CHRONY_FILE);
    assert_eq!(
        read(root, CHRONY_FILE).unwrap(),
        "# Written by lltune (lltune_timesync); lltune rollback puts back what was here.\n\
         server ntp1.example.com iburst\nserver 10.0.0.1 prefer minpoll 4 maxpoll 6\n\
         refclock PHC /dev/ptp0 poll 0 dpoll -2 offset 0.000037000 prefer\n"
    );
    // chrony.conf itself untouched; chronyd stays enabled; the competing timesyncd is disabled.
    assert_eq!(read(root, "/etc/chrony/chrony.conf").unwrap().lines().next(), Some("confdir /etc/chrony/conf.d"));
    assert!(link(root, &format!("{WANTS}/chronyd.service")).is_some());
    assert_eq!(link(root, "etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service"), None);
    let units: Vec<&str> = v["services"].as_array().unwrap().iter().map(|s| s["unit"].as_str().unwrap()).collect();
    assert_eq!(units, ["chronyd.service", "systemd-timesyncd.service"]);
    assert_eq!(v["state_not_applied"], json!(["chronyd.service", "systemd-timesyncd.service"]));

    let (again, code) = run_module("lltune_timesync", &with_root(&args, root, json!({})));
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["changed"], false, "{again}");

    let (rb, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "t1"}));
    assert_eq!(code, 0, "{rb}");
    assert_eq!(tree_snapshot(root), start);
}

#[test]
fn ptp4l_with_phc2sys_on_a_tree_writes_its_units_and_links_then_rolls_back() {
    let dir = ptp_host();
    let root = dir.path();
    let start = tree_snapshot(root);
    let args =
        json!({"provider": "ptp4l", "interface": "ens1f0", "domain": 24, "transport": "L2", "delay_mechanism": "P2P"});
    let (v, code) =
        run_module("lltune_timesync", &with_root(&args, root, json!({"backup_id": "p1", "_ansible_diff": true})));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], true);
    assert_eq!(
        read(root, "/etc/linuxptp/lltune-ptp4l.conf").unwrap(),
        "# Written by lltune (lltune_timesync); lltune rollback puts back what was here.\n[global]\n\
         slaveOnly 1\ndomainNumber 24\nnetwork_transport L2\ndelay_mechanism P2P\ntime_stamping hardware\n[ens1f0]\n"
    );
    let ptp = read(root, "/etc/systemd/system/lltune-ptp4l.service").unwrap();
    assert!(ptp.contains("ExecStart=/usr/sbin/ptp4l -f /etc/linuxptp/lltune-ptp4l.conf\n"), "{ptp}");
    assert!(ptp.contains("After=sys-subsystem-net-devices-ens1f0.device\n"), "{ptp}");
    let phc = read(root, "/etc/systemd/system/lltune-phc2sys.service").unwrap();
    assert!(phc.contains("ExecStart=/usr/sbin/phc2sys -s ens1f0 -c CLOCK_REALTIME -w -n 24\n"), "{phc}");
    for u in ["lltune-ptp4l.service", "lltune-phc2sys.service"] {
        assert_eq!(link(root, &format!("{WANTS}/{u}")), Some(format!("/etc/systemd/system/{u}")));
    }
    // chronyd competes with phc2sys for the system clock: disabled.
    assert_eq!(link(root, &format!("{WANTS}/chronyd.service")), None);
    assert_eq!(v["state_not_applied"], json!(["chronyd.service", "lltune-ptp4l.service", "lltune-phc2sys.service"]));
    assert!(v["warnings"].as_array().is_none_or(|w| w.is_empty()), "{v}");
    let (again, _) = run_module("lltune_timesync", &with_root(&args, root, json!({})));
    assert_eq!(again["changed"], false, "{again}");

    // phc2sys turned off later: its unit is disabled, its file kept.
    let (off, code) =
        run_module("lltune_timesync", &with_root(&args, root, json!({"phc2sys": false, "backup_id": "p2"})));
    assert_eq!(code, 0, "{off}");
    assert_eq!(link(root, &format!("{WANTS}/lltune-phc2sys.service")), None);
    assert!(link(root, &format!("{WANTS}/lltune-ptp4l.service")).is_some());

    for id in ["p2", "p1"] {
        let (rb, code) = run_module("lltune_rollback", &json!({"root": root, "backup": id}));
        assert_eq!(code, 0, "{rb}");
    }
    assert_eq!(tree_snapshot(root), start);
}

/// The trading set-up: ptp4l disciplines ens1f0's PHC, chrony steers the system clock from it
/// (no phc2sys).
#[test]
fn chrony_reads_the_phc_that_ptp4l_beside_it_disciplines() {
    let dir = chrony_host();
    let root = dir.path();
    put(root, "/usr/sbin/ptp4l", "");
    set_timestamping(root, "ens1f0", &["hardware-transmit", "hardware-receive", "hardware-raw-clock"]);
    let args = json!({"root": root, "backup_id": "b1", "provider": "chrony", "interface": "ens1f0",
        "refclock": {"phc": "ens1f0", "dpoll": -2, "poll": 0, "prefer": true}});
    // The PHC ptp4l disciplines keeps TAI: chrony must take the TAI-UTC offset off it (`tai`),
    // which needs the leap-second table. Without one the module refuses, writing nothing.
    let before_table = tree_snapshot(root);
    let (v, code) = run_module("lltune_timesync", &args);
    assert_eq!(code, 1, "{v}");
    let msg = v["msg"].as_str().unwrap();
    assert!(msg.contains("option refclock.tai:") && msg.contains("/usr/share/zoneinfo/right/UTC"), "{v}");
    assert!(msg.contains("tai is on because ptp4l runs beside chrony"), "{v}");
    assert_eq!(tree_snapshot(root), before_table, "a refused run wrote");
    // tai: false says the clock keeps UTC (no table needed).
    let mut utc = args.clone();
    utc["refclock"]["tai"] = json!(false);
    utc["_ansible_check_mode"] = json!(true);
    utc["_ansible_diff"] = json!(true);
    let (v, code) = run_module("lltune_timesync", &utc);
    assert_eq!(code, 0, "{v}");
    assert!(
        v["diff"][0]["after"].as_str().unwrap().contains("\nrefclock PHC /dev/ptp0 poll 0 dpoll -2 prefer\n"),
        "{v}"
    );
    put(root, "/usr/share/zoneinfo/right/UTC", "TZif2");
    let start = tree_snapshot(root);
    let (v, code) = run_module("lltune_timesync", &args);
    assert_eq!(code, 0, "{v}");
    let text = read(root, CHRONY_FILE).unwrap();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines, ["leapsectz right/UTC", "refclock PHC /dev/ptp0 poll 0 dpoll -2 prefer tai"], "{text}");
    assert!(read(root, "/etc/linuxptp/lltune-ptp4l.conf").unwrap().contains("\n[ens1f0]\n"));
    assert!(link(root, &format!("{WANTS}/lltune-ptp4l.service")).is_some());
    assert_eq!(read(root, "/etc/systemd/system/lltune-phc2sys.service"), None);
    assert!(link(root, &format!("{WANTS}/chronyd.service")).is_some());
    let (rb, code) = run_module("lltune_rollback", &json!({"root": root, "backup": "b1"}));
    assert_eq!(code, 0, "{rb}");
    assert_eq!(tree_snapshot(root), start);
}

/// Debian's chrony: `chrony.service` with the alias `chronyd.service` (a link once enabled).
/// ptp4l disables it once, by its own name, alias link and wants link both gone.
#[test]
fn ptp4l_disables_debians_chrony_through_its_alias_once() {
    let dir = ptp_host();
    let root = dir.path();
    fs::remove_file(root.join(WANTS).join("chronyd.service")).unwrap();
    fs::remove_file(root.join("usr/lib/systemd/system/chronyd.service")).unwrap();
    put(
        root,
        "/lib/systemd/system/chrony.service",
        "[Unit]\n[Install]\nAlias=chronyd.service\nWantedBy=multi-user.target\n",
    );
    std::os::unix::fs::symlink("/lib/systemd/system/chrony.service", root.join("etc/systemd/system/chronyd.service"))
        .unwrap();
    std::os::unix::fs::symlink("/lib/systemd/system/chrony.service", root.join(WANTS).join("chrony.service")).unwrap();
    let (v, code) = run_module("lltune_timesync", &json!({"root": root, "provider": "ptp4l", "interface": "ens1f0"}));
    assert_eq!(code, 0, "{v}");
    assert_eq!(link(root, "etc/systemd/system/chronyd.service"), None);
    assert_eq!(link(root, &format!("{WANTS}/chrony.service")), None);
    let units: Vec<&str> = v["services"].as_array().unwrap().iter().map(|s| s["unit"].as_str().unwrap()).collect();
    assert_eq!(units, ["chrony.service"]);
}

/// Each refusal names the option (and the interface), and leaves the tree as it was.
#[test]
fn refusals_name_the_option_and_write_nothing() {
    type Fixture = fn() -> tempfile::TempDir;
    let cases: Vec<(Fixture, Value, &str)> = vec![
        (
            ptp_host,
            json!({"provider": "ptp4l", "interface": "ens5f0"}),
            "option interface: ens5f0 has no PTP hardware clock",
        ),
        (ptp_host, json!({"provider": "ptp4l", "interface": "eth9"}), "option interface: no network interface eth9"),
        (
            ptp_host,
            json!({"provider": "ptp4l", "interface": "ens1f0", "domain": 128}),
            "option domain: 128 is outside 0..127",
        ),
        (ptp_host, json!({"provider": "ptp4l"}), "option interface is required"),
        (ptp_host, json!({"provider": "ptp4l", "interface": "ens1f0]\n[global"}), "option interface:"),
        (
            ptp_host,
            json!({"provider": "ptp4l", "interface": "ens1f0", "servers": [{"hostname": "a"}]}),
            "option servers:",
        ),
        (ptp_host, json!({"provider": "ptp4l", "interface": "ens1f0", "transport": "udp"}), "transport"),
        (chrony_host, json!({"provider": "chrony"}), "give servers, refclock or both"),
        (
            chrony_host,
            json!({"provider": "chrony", "servers": [{"hostname": "a.example\nrefclock SHM 0"}]}),
            "option servers[0].hostname",
        ),
        (
            chrony_host,
            json!({"provider": "chrony", "servers": [{"hostname": "a", "minpoll": 99}]}),
            "option servers[0].minpoll",
        ),
        (
            chrony_host,
            json!({"provider": "chrony", "refclock": {"phc": "ens5f0"}}),
            "option refclock.phc: ens5f0 has no PTP hardware clock",
        ),
        (
            chrony_host,
            json!({"provider": "chrony", "refclock": {"phc": "/dev/ptp7"}}),
            "option refclock.phc: no PTP clock ptp7",
        ),
        (
            chrony_host,
            json!({"provider": "chrony", "refclock": {"phc": "/dev/ptp0", "precision_ns": 0}}),
            "option refclock.precision_ns: 0 is outside",
        ),
        (
            chrony_host,
            json!({"provider": "chrony", "interface": "ens1f0", "servers": [{"hostname": "a"}]}),
            "option interface: ptp4l needs linuxptp",
        ),
        (
            chrony_host,
            json!({"provider": "chrony", "domain": 3, "servers": [{"hostname": "a"}]}),
            "option domain: a ptp4l option",
        ),
        (
            chrony_host,
            json!({"provider": "chrony", "phc2sys": true, "servers": [{"hostname": "a"}]}),
            "option phc2sys: true competes",
        ),
        (ptp_host, json!({"provider": "chrony", "servers": [{"hostname": "a"}]}), "chrony is not installed"),
    ];
    for (fixture, args, want) in cases {
        let dir = fixture();
        let start = tree_snapshot(dir.path());
        let (v, code) = run_module("lltune_timesync", &with_root(&args, dir.path(), json!({})));
        assert_eq!(code, 1, "{args}: {v}");
        let msg = v["msg"].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{args}: {msg}");
        assert_eq!(tree_snapshot(dir.path()), start, "{args}");
    }
    // A NIC without hardware receive timestamps; chrony.conf without a confdir (RHEL's).
    let dir = ptp_host();
    set_timestamping(dir.path(), "ens1f0", &["software-transmit", "software-receive", "hardware-transmit"]);
    let (v, _) =
        run_module("lltune_timesync", &json!({"root": dir.path(), "provider": "ptp4l", "interface": "ens1f0"}));
    assert_eq!(
        v["msg"],
        "option interface: ens1f0 lacks hardware timestamping (hardware-receive, hardware-raw-clock missing from its capabilities, ethtool -T)"
    );
    let dir = chrony_host();
    put(dir.path(), "/etc/chrony/chrony.conf", "pool 2.rhel.pool.ntp.org iburst\n");
    let (v, _) = run_module(
        "lltune_timesync",
        &json!({"root": dir.path(), "provider": "chrony", "servers": [{"hostname": "a"}]}),
    );
    assert!(v["msg"].as_str().unwrap().contains("has no `confdir` naming an existing folder"), "{v}");
}

// --- the real parsers ------------------------------------------------------------------

/// chronyd and ptp4l from Debian's chrony and linuxptp packages, unpacked (never installed:
/// an installed chrony starts a daemon that steps the clock) into the target's temp folder.
/// `None` (skip, a failure under CI=true) when they cannot be had.
pub fn timesync_tools(test: &str) -> Option<PathBuf> {
    static TOOLS: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let got = TOOLS.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("timesync-tools");
        let root = base.join("root");
        if root.join("usr/sbin/chronyd").exists() && root.join("usr/sbin/ptp4l").exists() {
            return Ok(root);
        }
        let debs = base.join("debs");
        fs::create_dir_all(&debs).map_err(|e| e.to_string())?;
        let download = || Command::new("apt-get").args(["download", "chrony", "linuxptp"]).current_dir(&debs).output();
        let ok = |o: &std::io::Result<std::process::Output>| o.as_ref().is_ok_and(|o| o.status.success());
        let mut out = download();
        if !ok(&out) {
            let _ = Command::new("apt-get").arg("update").output();
            out = download();
        }
        if !ok(&out) {
            return Err(format!(
                "apt-get download chrony linuxptp failed: {}",
                out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).unwrap_or_else(|e| e.to_string())
            ));
        }
        for e in fs::read_dir(&debs).map_err(|e| e.to_string())? {
            let p = e.map_err(|e| e.to_string())?.path();
            if p.extension().is_some_and(|x| x == "deb") {
                let o = Command::new("dpkg-deb").arg("-x").arg(&p).arg(&root).output().map_err(|e| e.to_string())?;
                if !o.status.success() {
                    return Err(format!("dpkg-deb -x {}: {}", p.display(), String::from_utf8_lossy(&o.stderr)));
                }
            }
        }
        Ok(root)
    });
    match got {
        Ok(root) => Some(root.clone()),
        Err(e) => {
            support::skip_unless_ci(&format!("{test}: {e}"));
            None
        }
    }
}

/// `chronyd -p -f FILE`: chronyd prints the configuration it parsed and exits, without
/// starting (chronyd(8)). The text printed, or the error.
pub fn chronyd_parse(tools: &Path, text: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("lltune.conf");
    fs::write(&f, text).unwrap();
    let o = Command::new(tools.join("usr/sbin/chronyd")).arg("-p").arg("-f").arg(&f).output().unwrap();
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// ptp4l has no parse-only mode: it reads the whole file first and stops with "failed to
/// parse configuration file" on any bad line, then goes on to the interfaces. The config
/// names an interface that does not exist here, so a file that parses stops at the clock
/// (never runs). `Ok` when the file parsed.
pub fn ptp4l_parse(tools: &Path, text: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ptp4l.conf");
    fs::write(&f, text).unwrap();
    let o = Command::new("timeout")
        .args(["10"])
        .arg(tools.join("usr/sbin/ptp4l"))
        .arg("-f")
        .arg(&f)
        .arg("-m")
        .arg("-q")
        .output()
        .unwrap();
    let err = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_ne!(o.status.code(), Some(124), "ptp4l ran on: {err}");
    assert!(!o.status.success(), "ptp4l ran with a config naming no real interface: {err}");
    if err.contains("failed to parse configuration file") || err.contains("line ") { Err(err) } else { Ok(()) }
}

/// A generated host name from an alphabet heavy in what could end a chrony line or add a
/// directive: most are refused; every one accepted must come back from chronyd as the one
/// server line lltune meant.
fn random_hostname(rng: &mut support::Rng) -> String {
    const NAME: &[u8] = b"ab9z.-0f:";
    const HOSTILE: &[u8] = b"\n #;!%\t\\\"[]/_\r\x00";
    let n = 1 + rng.below(12);
    (0..n)
        .map(|_| if rng.below(10) == 0 { HOSTILE[rng.below(HOSTILE.len())] } else { NAME[rng.below(NAME.len())] } as char)
        .collect()
}

#[test]
fn what_lltune_writes_for_chrony_is_what_chronyd_parses() {
    let Some(tools) = timesync_tools("what_lltune_writes_for_chrony_is_what_chronyd_parses") else { return };
    use lltune::modules::timesync::{Refclock, Server, chrony_text, valid_hostname};
    let mut rng = support::Rng(0x19_7135_2026);
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..400 {
        let host = random_hostname(&mut rng);
        if !valid_hostname(&host) {
            refused += 1;
            continue;
        }
        accepted += 1;
        let servers = vec![Server {
            hostname: host.clone(),
            iburst: i % 2 == 0,
            prefer: i % 3 == 0,
            pool: i % 5 == 0,
            minpoll: Some(rng.below(8) as i64 - 2),
            maxpoll: Some(10),
        }];
        let r = Refclock {
            phc: String::new(),
            poll: Some(rng.below(6) as i64 - 3),
            dpoll: Some(-2),
            offset_ns: Some(rng.below(2_000_000_001) as i64 - 1_000_000_000),
            precision_ns: Some(1 + rng.below(1000) as i64),
            prefer: i % 2 == 1,
            tai: None,
        };
        // `tai` (a PHC in TAI) adds chrony's leap-second table line: both parse.
        let text = chrony_text(&servers, Some(("/dev/ptp0", &r)), i % 4 == 0);
        let printed = chronyd_parse(&tools, &text).unwrap_or_else(|e| panic!("{host:?}: chronyd refused\n{text}\n{e}"));
        // chronyd prints the lines it read, comments dropped: exactly our directives.
        let ours: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(printed.lines().collect::<Vec<_>>(), ours, "{host:?}");
        let words: Vec<&str> = ours[0].split_whitespace().collect();
        assert_eq!(words[1], host, "{host:?} is one word");
    }
    assert!(accepted > 40 && refused > 100, "accepted {accepted}, refused {refused}");
    // And chronyd does refuse what a newline would inject: the guard is needed.
    assert!(chronyd_parse(&tools, "server a\nnot-a-directive x\n").is_err());
}

#[test]
fn what_lltune_writes_for_ptp4l_is_what_ptp4l_parses() {
    let Some(tools) = timesync_tools("what_lltune_writes_for_ptp4l_is_what_ptp4l_parses") else { return };
    use lltune::modules::timesync::{DOMAIN_RANGE, DelayMechanism, PtpSettings, Transport, ptp4l_text};
    let base = PtpSettings {
        interface: "lltnoif0".into(),
        domain: 0,
        transport: Transport::UDPv4,
        delay_mechanism: DelayMechanism::E2E,
    };
    for transport in [Transport::UDPv4, Transport::UDPv6, Transport::L2] {
        for delay_mechanism in [DelayMechanism::E2E, DelayMechanism::P2P] {
            let p = PtpSettings { transport, delay_mechanism, ..base.clone() };
            ptp4l_parse(&tools, &ptp4l_text(&p)).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        }
    }
    // lltune's domain range is ptp4l's: every value around its edges, both ways.
    for domain in [-1, 0, 1, 126, 127, 128, 255, 256] {
        let p = PtpSettings { domain, ..base.clone() };
        assert_eq!(
            ptp4l_parse(&tools, &ptp4l_text(&p)).is_ok(),
            DOMAIN_RANGE.contains(&domain),
            "domain {domain}: ptp4l and lltune disagree"
        );
    }
    // The check tells a bad file from a good one.
    assert!(ptp4l_parse(&tools, "[global]\nno_such_option 1\n").is_err());
}

/// `lltune apply` carries out `time_sync` through lltune_timesync: plan writes nothing, apply
/// writes chrony's drop-in, a second apply changes nothing, rollback restores the tree.
#[test]
fn lltune_apply_carries_out_the_time_sync_section() {
    let dir = chrony_host();
    let root = dir.path();
    let cfg = tempfile::NamedTempFile::new().unwrap();
    fs::write(
        cfg.path(),
        "version: 1\ntime_sync:\n  provider: chrony\n  servers:\n    - {hostname: ntp1.example.com, iburst: true}\n  refclock: {phc: ens1f0, poll: 0, prefer: true}\n",
    )
    .unwrap();
    let lltune = |args: &[&str]| {
        let out = Command::new(support::bin("lltune")).args(args).arg("--root").arg(root).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.code().unwrap_or(-1), text)
    };
    let c = cfg.path().to_str().unwrap();
    let start = tree_snapshot(root);
    let (code, plan) = lltune(&["apply", "-c", c, "--plan"]);
    assert_eq!(code, 0, "{plan}");
    assert!(plan.contains("lltune_timesync") && plan.contains("+server ntp1.example.com iburst"), "{plan}");
    assert!(!plan.contains("not implemented"), "{plan}");
    assert_eq!(tree_snapshot(root), start, "apply --plan wrote");
    let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "a1"]);
    assert_eq!(code, 0, "{out}");
    assert!(read(root, CHRONY_FILE).unwrap().contains("refclock PHC /dev/ptp0 poll 0 prefer\n"));
    let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "a2"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to change"), "{out}");
    let (code, out) = lltune(&["rollback", "--backup", "a1"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(tree_snapshot(root), start);
}
