//! lltune_kernel_args through its real binary on copies of the boot fixture trees: RHEL 9
//! BLS, RHEL 8 classic GRUB2 (BIOS and UEFI config paths), Debian 12.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::change_sysctl::immutable;
use crate::support::{assert_same_tree, boot_fixture, run_module, tree_snapshot};

fn read(root: &Path, p: &str) -> String {
    fs::read_to_string(root.join(p.trim_start_matches('/'))).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn args(root: &Path, extra: Value) -> Value {
    let mut v = json!({
        "root": root,
        "args": {"isolcpus": "managed_irq,domain,2-5", "nohz_full": "2-5", "skew_tick": 1, "nosoftlockup": ""},
        "remove": ["rhgb"],
        "backup_id": "t1",
        "_ansible_diff": true,
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

const BLS_ENTRIES: &[&str] = &[
    "/boot/loader/entries/8f3b1c2d4e5f60718293a4b5c6d7e8f9-0-rescue.conf",
    "/boot/loader/entries/8f3b1c2d4e5f60718293a4b5c6d7e8f9-5.14.0-362.8.1.el9_3.x86_64.conf",
    "/boot/loader/entries/8f3b1c2d4e5f60718293a4b5c6d7e8f9-5.14.0-427.13.1.el9_4.x86_64.conf",
];

const RHEL9_OPTS: &str = "root=/dev/mapper/rl-root ro crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=/dev/mapper/rl-swap rd.lvm.lv=rl/root rd.lvm.lv=rl/swap quiet";

/// Simulates the reboot: /proc/cmdline becomes what the configuration now boots.
fn reboot_with(root: &Path, cmdline: &str) {
    fs::write(root.join("proc/cmdline"), format!("{cmdline}\n")).unwrap();
}

#[test]
fn kernel_args_rhel9_bls_edits_every_entry_grub_defaults_and_kernel_cmdline() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let (v, code) = run_module("lltune_kernel_args", &args(root, json!({})));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], true);
    assert_eq!(v["bootloader"], "bls");
    assert_eq!(v["reboot_required"], true);
    assert_eq!(v["backup"], "/var/lib/lltune/backups/t1");
    assert_eq!(v["grub_cfg"], Value::Null, "BLS needs no grub.cfg regeneration");
    let added = "isolcpus=managed_irq,domain,2-5 nohz_full=2-5 skew_tick=1 nosoftlockup";
    // Every entry (rescue too, as grubby --update-kernel=ALL), tuned's variable kept in place.
    for e in &BLS_ENTRIES[1..] {
        assert!(
            read(root, e).contains(&format!("\noptions {RHEL9_OPTS} $tuned_params {added}\ngrub_users $grub_users\n")),
            "{e}: {}",
            read(root, e)
        );
    }
    assert!(read(root, BLS_ENTRIES[0]).contains(&format!("\noptions {RHEL9_OPTS} {added}\n")));
    assert!(read(root, "/etc/default/grub").contains(&format!(
        "\nGRUB_CMDLINE_LINUX=\"crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M resume=/dev/mapper/rl-swap rd.lvm.lv=rl/root rd.lvm.lv=rl/swap quiet {added}\"\n"
    )));
    assert_eq!(read(root, "/etc/kernel/cmdline"), format!("{RHEL9_OPTS} {added}\n"));
    let diff = v["diff"].as_array().unwrap();
    let headers: Vec<&str> = diff.iter().map(|d| d["before_header"].as_str().unwrap()).collect();
    // The arguments first, one per line, then each file.
    let mut want = vec!["kernel arguments of the next boot: 4 added, 1 removed, 0 changed", "/etc/default/grub"];
    want.extend(BLS_ENTRIES);
    want.push("/etc/kernel/cmdline");
    assert_eq!(headers, want);
    assert_eq!(
        v["changes"],
        json!({"added": ["isolcpus=managed_irq,domain,2-5", "nohz_full=2-5", "nosoftlockup", "skew_tick=1"],
               "removed": ["rhgb"], "changed": []})
    );
    assert_eq!(
        (diff[0]["before"].as_str(), diff[0]["after"].as_str()),
        (Some("rhgb\n"), Some("isolcpus=managed_irq,domain,2-5\nnohz_full=2-5\nnosoftlockup\nskew_tick=1\n"))
    );
    assert_eq!(v["configured"]["nohz_full"], json!(["2-5"]));
    assert_eq!(v["configured"]["tuned_params"], Value::Null);
    assert_eq!(v["configured"]["$tuned_params"], json!([null]));
    assert_eq!(v["running"]["rhgb"], json!([null]));
    let pending: Vec<&str> = v["pending"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(pending, vec!["isolcpus", "nohz_full", "skew_tick", "nosoftlockup", "rhgb"]);

    // Rerun before the reboot: nothing to write, still waiting for the reboot.
    let before = tree_snapshot(root);
    let (again, _) = run_module("lltune_kernel_args", &args(root, json!({"backup_id": "t2"})));
    assert_eq!(again["changed"], false, "{again}");
    assert_eq!(again["reboot_required"], true);
    assert_same_tree(&before, &tree_snapshot(root), "rerun");

    // After a reboot with the new arguments: no change, no reboot.
    reboot_with(root, &format!("BOOT_IMAGE=(hd0,gpt2)/vmlinuz-5.14.0-427.13.1.el9_4.x86_64 {RHEL9_OPTS} {added}"));
    let (after_reboot, _) = run_module("lltune_kernel_args", &args(root, json!({})));
    assert_eq!(after_reboot["changed"], false, "{after_reboot}");
    assert_eq!(after_reboot["reboot_required"], false, "{after_reboot}");
    assert_eq!(after_reboot["pending"], json!([]));
}

#[test]
fn kernel_args_classic_grub2_edits_defaults_in_place_and_names_the_cfg_to_regenerate() {
    for (name, cfg, command) in [
        ("rhel8-grub2-bios", "/boot/grub2/grub.cfg", "grub2-mkconfig -o /boot/grub2/grub.cfg"),
        ("rhel8-grub2-uefi", "/boot/efi/EFI/redhat/grub.cfg", "grub2-mkconfig -o /boot/efi/EFI/redhat/grub.cfg"),
    ] {
        let dir = boot_fixture(name);
        let root = dir.path();
        let cfg_before = read(root, cfg);
        let (v, code) = run_module("lltune_kernel_args", &args(root, json!({})));
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["bootloader"], "grub2");
        // nohz_full=1-3 is changed where it stands; rhgb goes; new ones are appended.
        assert!(read(root, "/etc/default/grub").contains(
            "\nGRUB_CMDLINE_LINUX=\"crashkernel=auto resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap quiet nohz_full=2-5 isolcpus=managed_irq,domain,2-5 skew_tick=1 nosoftlockup\"\n"
        ), "{name}: {}", read(root, "/etc/default/grub"));
        assert_eq!(
            v["grub_cfg"],
            json!({"path": cfg, "command": command, "regenerated": false, "note": format!("skipped: root is not /; run `{command}` on the host before rebooting")}),
            "{name}"
        );
        assert_eq!(read(root, cfg), cfg_before, "grub.cfg is never edited by hand");
        assert!(v["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains(command)));
        // The arguments, then the one file.
        let headers: Vec<&str> =
            v["diff"].as_array().unwrap().iter().map(|d| d["after_header"].as_str().unwrap()).collect();
        assert_eq!(headers, ["kernel arguments of the next boot: 3 added, 1 removed, 1 changed", "/etc/default/grub"]);
        assert_eq!(
            v["changes"]["changed"],
            json!([{"key": "nohz_full", "before": ["nohz_full=1-3"], "after": ["nohz_full=2-5"]}]),
            "{name}"
        );
        let (again, _) = run_module("lltune_kernel_args", &args(root, json!({})));
        assert_eq!(again["changed"], false);
        assert_eq!(again["grub_cfg"], Value::Null, "nothing to regenerate when nothing changed");
    }
}

#[test]
fn kernel_args_debian_uses_grub_cmdline_linux_and_update_grub() {
    let dir = boot_fixture("debian12");
    let root = dir.path();
    let (v, code) = run_module(
        "lltune_kernel_args",
        &json!({"root": root, "args": {"nohz_full": "2-5", "quiet": null, "dyndbg": "file a.c +p"}}),
    );
    assert_eq!(code, 0, "{v}");
    let grub = read(root, "/etc/default/grub");
    // quiet already sits in GRUB_CMDLINE_LINUX_DEFAULT: kept there, not duplicated.
    assert!(
        grub.contains(
            "\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"nohz_full=2-5 dyndbg=\\\"file a.c +p\\\"\"\n"
        ),
        "{grub}"
    );
    assert_eq!(v["configured"]["dyndbg"], json!(["file a.c +p"]));
    assert_eq!(v["grub_cfg"]["command"], "update-grub");
    let pending: Vec<&str> = v["pending"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(pending, vec!["nohz_full", "dyndbg"]);
    let (again, _) = run_module(
        "lltune_kernel_args",
        &json!({"root": root, "args": {"nohz_full": "2-5", "quiet": null, "dyndbg": "file a.c +p"}}),
    );
    assert_eq!(again["changed"], false, "{again}");
}

#[test]
fn kernel_args_check_mode_predicts_the_real_run_without_writing() {
    for name in ["rhel9-bls", "rhel8-grub2-bios", "rhel8-grub2-uefi", "debian12"] {
        let checked = boot_fixture(name);
        let before = tree_snapshot(checked.path());
        let (predicted, code) =
            run_module("lltune_kernel_args", &args(checked.path(), json!({"_ansible_check_mode": true})));
        assert_eq!(code, 0, "{predicted}");
        assert_same_tree(&before, &tree_snapshot(checked.path()), "check mode");
        assert!(!checked.path().join("var/lib/lltune").exists());
        let real = boot_fixture(name);
        let (done, _) = run_module("lltune_kernel_args", &args(real.path(), json!({})));
        assert_eq!(predicted["changed"], true);
        for k in ["diff", "configured", "pending", "reboot_required", "running", "bootloader"] {
            assert_eq!(predicted[k], done[k], "{name}: {k}");
        }
        assert_eq!(predicted["backup"], Value::Null);
    }
}

#[test]
fn kernel_args_refuses_dangerous_or_unbootable_edits_writing_nothing() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let before = tree_snapshot(root);
    for (a, want) in [
        (
            json!({"args": {"mitigations": "off"}}),
            "option args: mitigations=off switches off CPU vulnerability protection (every optional mitigation, or those of an attack vector): allowed only with allow_dangerous_mitigations: true",
        ),
        (json!({"args": {"nospectre_v2": ""}}), "option args: nospectre_v2 switches off CPU vulnerability protection"),
        (json!({"args": {"tsa": "off"}}), "option args: tsa=off switches off CPU vulnerability protection"),
        (json!({"args": {"kpti": "no"}}), "option args: kpti=no switches off CPU vulnerability protection"),
        (json!({"remove": ["root"]}), "option remove: removing root is refused: names the root file system"),
        (json!({"remove": ["BOOT_IMAGE"]}), "option remove: removing BOOT_IMAGE is refused"),
        (json!({"args": {"root": "/dev/sdb1"}}), "option args: root=/dev/sdb1 is refused"),
        // Boot-breaking arguments: refused even with consent to weaken mitigations.
        (
            json!({"args": {"init": "/bin/sh"}, "allow_dangerous_mitigations": true}),
            "option args: init=/bin/sh is refused",
        ),
        (json!({"args": {"rd.break": null}, "allow_dangerous_mitigations": true}), "option args: rd.break is refused"),
        (json!({"args": {"single": ""}, "allow_dangerous_mitigations": true}), "option args: single is refused"),
        (
            json!({"args": {"systemd.unit": "emergency.target"}, "allow_dangerous_mitigations": true}),
            "option args: systemd.unit=emergency.target is refused",
        ),
        (json!({"args": {"selinux": "0"}, "allow_dangerous_mitigations": true}), "option args: selinux=0 is refused"),
        (json!({"args": {"noapic": ""}, "allow_dangerous_mitigations": true}), "option args: noapic is refused"),
        (json!({"args": {"nosmp": ""}, "allow_dangerous_mitigations": true}), "option args: nosmp is refused"),
        (json!({"args": {"isol cpus": "1"}}), "option args: \"isol cpus\" is not a kernel parameter name"),
        (json!({"args": {"quiet;reboot": null}}), "option args: \"quiet;reboot\" is not a kernel parameter name"),
        (json!({"args": {"x": "$(reboot)"}}), "option args: x: value \"$(reboot)\" contains '$'"),
        (json!({"args": {"mitigations": false}}), "option args: mitigations: got the boolean false; quote the value"),
        (json!({"bootloader": "lilo"}), "option bootloader: \"lilo\" is not one of auto, bls, grub2, kernel-cmdline"),
    ] {
        let mut a = a;
        a["root"] = json!(root);
        let (v, code) = run_module("lltune_kernel_args", &a);
        assert_eq!(code, 1, "{v}");
        assert!(v["msg"].as_str().unwrap().starts_with(want), "{} !~ {want}", v["msg"]);
    }
    assert_same_tree(&before, &tree_snapshot(root), "refused runs");
    assert!(!root.join("var/lib/lltune").exists());
    // With the flag, mitigations=off is written.
    let (v, code) = run_module(
        "lltune_kernel_args",
        &json!({"root": root, "args": {"mitigations": "off"}, "allow_dangerous_mitigations": true}),
    );
    assert_eq!(code, 0, "{v}");
    assert!(read(root, "/etc/kernel/cmdline").ends_with(" quiet mitigations=off\n"));
}

#[test]
fn kernel_args_unwritable_file_midway_reverts_every_file_of_the_run() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let before = tree_snapshot(root);
    // /etc/kernel/cmdline is written last: grub defaults and three entries come first.
    let Some(_guard) = immutable(&root.join("etc/kernel/cmdline")) else { return };
    let (v, code) = run_module("lltune_kernel_args", &args(root, json!({})));
    assert_eq!(code, 1, "{v}");
    let msg = v["msg"].as_str().unwrap();
    assert!(msg.starts_with("writing /etc/kernel/cmdline: /etc/kernel/cmdline: "), "{msg}");
    let mut reverted: Vec<&str> = BLS_ENTRIES.iter().rev().copied().collect();
    reverted.push("/etc/default/grub");
    assert!(msg.ends_with(&format!("; reverted this run's changes to: {}", reverted.join(", "))), "{msg}");
    assert_eq!(v["changed"], false);
    assert_same_tree(&before, &tree_snapshot(root), "after the failed run");
    // The refused rename left the old file and no temp file.
    let names: Vec<String> = fs::read_dir(root.join("etc/kernel"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["cmdline".to_string()]);
}

#[test]
fn kernel_args_remove_one_value_of_a_repeated_key() {
    let dir = boot_fixture("debian12");
    let root = dir.path();
    fs::create_dir_all(root.join("etc/kernel")).unwrap();
    fs::write(root.join("etc/kernel/cmdline"), "root=UUID=x ro console=tty0 console=ttyS0,115200 quiet\n").unwrap();
    let (v, code) = run_module(
        "lltune_kernel_args",
        &json!({"root": root, "remove": ["console=tty0"], "bootloader": "kernel-cmdline"}),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["bootloader"], "kernel-cmdline");
    assert_eq!(read(root, "/etc/kernel/cmdline"), "root=UUID=x ro console=ttyS0,115200 quiet\n");
    assert!(read(root, "/etc/default/grub").contains("GRUB_CMDLINE_LINUX=\"\"\n"), "grub is not this layout's");
}

/// The output's size in bytes, as the module printed it (compact JSON).
fn out_len(v: &Value) -> usize {
    serde_json::to_vec(v).unwrap().len()
}

#[test]
fn kernel_args_absurd_proc_cmdline_is_not_echoed_and_running_is_null() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    // 1 MB of arguments in /proc/cmdline: no kernel writes that.
    let mut big = String::from("BOOT_IMAGE=/vmlinuz root=/dev/x ro");
    while big.len() < 1 << 20 {
        big.push_str(&format!(" junk{}=\"{}\"", big.len(), "x".repeat(40)));
    }
    reboot_with(root, &big);
    let (v, code) = run_module("lltune_kernel_args", &args(root, json!({"_ansible_check_mode": true})));
    assert_eq!(code, 0, "{}", &v.to_string()[..2000.min(v.to_string().len())]);
    assert!(out_len(&v) < 64 * 1024, "{} bytes of output", out_len(&v));
    assert_eq!(v["running"], Value::Null);
    assert_eq!(v["pending"], json!([]));
    assert_eq!(v["changed"], true, "the edit itself still planned");
    let warnings: Vec<&str> = v["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    let w = warnings.iter().find(|w| w.starts_with("/proc/cmdline is ")).expect("a warning about /proc/cmdline");
    assert!(w.contains("longer than any kernel command line"), "{w}");
    assert!(w.len() < 1024, "{} bytes", w.len());
    assert!(warnings.iter().all(|w| w.len() < 1024));
    // A real-sized line is still read (the fixture's own, 238 bytes).
    reboot_with(root, "BOOT_IMAGE=/vmlinuz root=/dev/x ro nohz_full=2-5");
    let (v, _) = run_module("lltune_kernel_args", &args(root, json!({"_ansible_check_mode": true})));
    assert_eq!(v["running"]["nohz_full"], json!(["2-5"]));
}

#[test]
fn kernel_args_refuses_a_command_line_the_kernel_would_cut() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let before = tree_snapshot(root);
    // One argument longer than any command line: refused by name, echo capped.
    let (v, code) = run_module("lltune_kernel_args", &json!({"root": root, "args": {"dyndbg": "x".repeat(5000)}}));
    assert_eq!(code, 1, "{v}");
    let msg = v["msg"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "option args: dyndbg: the argument is 5007 bytes, longer than the whole kernel command line may be"
        ),
        "{msg}"
    );
    assert!(msg.len() < 400, "{msg}");
    let long_key = "k".repeat(5000);
    let (v, code) = run_module("lltune_kernel_args", &json!({"root": root, "args": {long_key.clone(): null}}));
    assert_eq!(code, 1, "{v}");
    let msg = v["msg"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("option args: {}... (5000 characters): the argument is 5000 bytes", &long_key[..200]))
    );
    assert!(msg.len() < 500, "{msg}");

    // Arguments that fit one by one but not together: the file and both lengths named.
    let many: serde_json::Map<String, Value> =
        (0..200).map(|i| (format!("lltune_test_arg_{i}"), json!(format!("{i}")))).collect();
    let (v, code) = run_module("lltune_kernel_args", &json!({"root": root, "args": many}));
    assert_eq!(code, 1, "{v}");
    let msg = v["msg"].as_str().unwrap();
    // The x86 limit, when built for x86 (the check uses the build's arch).
    if cfg!(target_arch = "x86_64") {
        assert!(
            msg.contains("over the limit of 2047 bytes on x86_64 (COMMAND_LINE_SIZE 2048, its NUL included)"),
            "{msg}"
        );
    }
    // GRUB defaults count GRUB's BOOT_IMAGE/root/ro from the running line: named with its length.
    let re =
        regex::Regex::new(r"^/etc/default/grub: the kernel command line it gives would be (\d+) bytes \(").unwrap();
    let n: usize = re.captures(msg).unwrap_or_else(|| panic!("{msg}"))[1].parse().unwrap();
    assert!(n > 2047, "{msg}");
    for e in BLS_ENTRIES.iter().chain(&["/etc/kernel/cmdline"]) {
        assert!(msg.contains(&format!("; {e}: the kernel command line it gives would be ")), "{e}: {msg}");
    }
    assert!(msg.ends_with("the kernel would cut it off at boot: nothing changed"), "{msg}");
    assert_same_tree(&before, &tree_snapshot(root), "refused runs");
    assert!(!root.join("var/lib/lltune").exists());

    // A line already too long may still be shortened (a warning, not a refusal).
    let extra: String = (0..200).map(|i| format!(" lltune_test_arg_{i}={i}")).collect();
    let kc = root.join("etc/kernel/cmdline");
    fs::write(&kc, format!("{}{extra}\n", read(root, "/etc/kernel/cmdline").trim_end())).unwrap();
    let (v, code) = run_module("lltune_kernel_args", &json!({"root": root, "remove": ["lltune_test_arg_0"]}));
    assert_eq!(code, 0, "{v}");
    assert!(
        v["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with("/etc/kernel/cmdline: the kernel command line it gives would be ")),
        "{v}"
    );
    assert!(!read(root, "/etc/kernel/cmdline").contains("lltune_test_arg_0="));
}

#[test]
fn kernel_args_refuses_control_characters_and_bad_keys_with_capped_echo() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let before = tree_snapshot(root);
    // Large but within the 1 MiB args limit (beyond it, the whole args file is refused).
    let huge = format!("{}$", "v".repeat(300_000));
    for (a, want) in [
        (json!({"args": {"x": "a\tb"}}), "option args: x: the value contains the control character '\\t'"),
        (json!({"args": {"x": "a\u{1b}[2Jb"}}), "option args: x: the value contains the control character '\\u{1b}'"),
        (json!({"args": {"x": "a\u{7f}"}}), "option args: x: the value contains the control character '\\u{7f}'"),
        (json!({"args": {"x": "a\u{85}"}}), "option args: x: the value contains the control character '\\u{85}'"),
        (json!({"args": {"x": "a\nb"}}), "option args: x: the value contains the control character '\\n'"),
        (json!({"args": {"x": "a\rb"}}), "option args: x: the value contains the control character '\\r'"),
        (json!({"args": {"x": "a\u{0}b"}}), "option args: x: the value contains the control character '\\0'"),
        (json!({"remove": ["x=a\tb"]}), "option remove: \"x=a\\tb\": contains the control character '\\t'"),
        (json!({"args": {"a=b": "1"}}), "option args: \"a=b\" is not a kernel parameter name"),
        (json!({"args": {"": "1"}}), "option args: \"\" is not a kernel parameter name"),
        (json!({"args": {"-x": "1"}}), "option args: \"-x\" is not a kernel parameter name"),
        (json!({"args": {"ä": "1"}}), "option args: \"ä\" is not a kernel parameter name"),
        (json!({"args": {"a\tb": "1"}}), "option args: \"a\\tb\" is not a kernel parameter name"),
        (json!({"args": {"--": null}}), "option args: \"--\" is not a kernel parameter name"),
        (json!({"remove": ["a b"]}), "option remove: \"a b\" is not a kernel parameter name"),
        // Lengths are checked first: nothing longer than a command line is read further.
        (
            json!({"args": {"x": huge}}),
            "option args: x: the argument is 300003 bytes, longer than the whole kernel command line",
        ),
        (json!({"args": {huge.clone(): "1"}}), "option args: vvvv"),
        (json!({"bootloader": huge}), "option bootloader: \"vvvv"),
    ] {
        let mut a = a;
        a["root"] = json!(root);
        let (v, code) = run_module("lltune_kernel_args", &a);
        assert_eq!(code, 1, "{}", cap(&v));
        let msg = v["msg"].as_str().unwrap();
        assert!(msg.starts_with(want), "{} !~ {want}", cap(&v));
        assert!(msg.len() < 1024, "{} bytes: {}", msg.len(), cap(&v));
        assert!(out_len(&v) < 4096, "{} bytes of output", out_len(&v));
    }
    assert_same_tree(&before, &tree_snapshot(root), "refused runs");
    // Module parameters (dots), dashes and digits are parameter names.
    let (v, code) = run_module(
        "lltune_kernel_args",
        &json!({"root": root, "args": {"rcu_nocb_poll": null, "kvm-intel.ple_gap": 0, "8250.nr_uarts": 4}, "_ansible_check_mode": true}),
    );
    assert_eq!(code, 0, "{v}");
}

fn cap(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(600).collect()
}

/// The value read as the kernel, systemd and dracut read it: spellings of "off", arguments
/// riding inside another's value, and the boot-breaking classes the policy did not know.
/// Each is refused by name, writing nothing. (The generated proof is tests/policy_model.rs.)
// See: issue 17, "The boot-argument guard matches strings; the kernel parses values".
#[test]
fn kernel_args_refuses_values_by_what_the_kernel_parses_writing_nothing() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    let before = tree_snapshot(root);
    // Mitigations off to the kernel: a prefix, a comma element, a first letter.
    for (k, v) in [
        ("mitigations", "off,nosmt"),
        ("mitigations", "offline"),
        ("mitigations", "auto,no_user_kernel"),
        ("retbleed", "auto,off"),
        ("kpti", "N"),
        ("kpti", "f"),
        ("kvm.nx_huge_pages", "n"),
        ("kvm.nx-huge-pages", "0"),
        ("kvm_intel.vmentry_l1d_flush", "Never"),
        ("rodata", "Full"),
        ("nosmep_x", ""),
    ] {
        let (out, code) = run_module("lltune_kernel_args", &json!({"root": root, "args": {k: v}}));
        assert_eq!(code, 1, "{k}={v}: {out}");
        let msg = out["msg"].as_str().unwrap();
        assert!(msg.starts_with(&format!("option args: {k}")), "{msg}");
        assert!(msg.contains("allow_dangerous_mitigations: true"), "{msg}");
    }
    // Refused even with consent: a value with a space, a quote or a byte outside ASCII, an
    // argument hidden in a dyndbg query, a GRUB command separator, the boot-breaking classes.
    for (k, v, want) in [
        ("skew_tick", "1 rd.break x", "contains whitespace"),
        ("skew_tick", "1 init=/bin/sh", "contains whitespace"),
        ("skew_tick", "1\u{a0}init=/bin/sh", "outside ASCII"),
        ("idle", "poll\"", "contains '\"'"),
        ("dyndbg", "file a.c +p rd.break", "the word \"rd.break\" of the value"),
        ("skew_tick", "1;reboot", "GRUB's script reader"),
        ("module_blacklist", "nvme,megaraid_sas", "keeps drivers or initcalls from loading"),
        ("rd.driver.blacklist", "ahci", "keeps drivers or initcalls from loading"),
        ("modprobe.blacklist", "mlx5_core", "keeps drivers or initcalls from loading"),
        ("initcall_blacklist", "nvme_init", "keeps drivers or initcalls from loading"),
        ("systemd.volatile", "state", "tmpfs"),
        ("systemd.volatile", "", "tmpfs"),
        ("console", "null", "console to nowhere"),
        ("rd.shell", "false", "root shell"),
        ("nosmp_now", "", "one CPU"),
        ("maxcpus", "0", "this many CPUs"),
        ("disable_cpu_apicid", "0", "APIC id"),
        ("intremap", "off", "interrupt remapping"),
        ("systemd.run", "/bin/true", "powers off"),
    ] {
        let a = json!({"root": root, "args": {k: v}, "allow_dangerous_mitigations": true});
        let (out, code) = run_module("lltune_kernel_args", &a);
        assert_eq!(code, 1, "{k}={v}: {out}");
        let msg = out["msg"].as_str().unwrap();
        assert!(msg.starts_with(&format!("option args: {k}")) && msg.contains(want), "{k}={v}: {msg}");
    }
    assert_same_tree(&before, &tree_snapshot(root), "refused runs");
    assert!(!root.join("var/lib/lltune").exists());
    // What the readers take as harmless passes: a query with spaces for dyndbg (written
    // quoted), rd.shell=0, a real console.
    let (out, code) = run_module(
        "lltune_kernel_args",
        &json!({"root": root, "args": {"dyndbg": "file a.c +p", "rd.shell": "0", "console": "ttyS0,115200n8"}}),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        read(root, "/etc/kernel/cmdline")
            .ends_with(" quiet dyndbg=\"file a.c +p\" rd.shell=0 console=ttyS0,115200n8\n")
    );
}

/// A 376 GiB host (two 188 GiB nodes). The boot fixtures carry no memory files: these are
/// the numbers of such a host's /proc/meminfo and node meminfo, written into the copy.
fn host_376g(root: &Path) {
    let gib = 1u64 << 20;
    fs::write(
        root.join("proc/meminfo"),
        format!("MemTotal:       {} kB\nMemFree:        {} kB\n", 376 * gib, 300 * gib),
    )
    .unwrap();
    for n in 0..2 {
        let d = root.join(format!("sys/devices/system/node/node{n}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("meminfo"),
            format!("Node {n} MemTotal:       {} kB\nNode {n} MemFree:        {} kB\n", 188 * gib, 150 * gib),
        )
        .unwrap();
    }
}

/// The OS reserve `lltune audit` applies to huge pages reserved at boot holds in the module
/// too, on the command line the next boot gets (the one check, crate::policy).
// See: issue 17, "hugepagesz=1G hugepages=100000 on a 376 GiB host passes lltune_kernel_args".
#[test]
fn kernel_args_keeps_the_os_reserve_for_boot_huge_pages() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    host_376g(root);
    let before = tree_snapshot(root);
    for (args, want) in [
        (
            json!({"hugepagesz": "1G", "hugepages": 100000}),
            "option args: hugepages: 100000 × 1048576 kB = 104857600000 kB at boot: the host has 394264576 kB (376.0 GiB); huge pages must leave the OS at least 39426450 kB",
        ),
        // Within the host but past one node's share (188 GiB less 10%).
        (json!({"hugepagesz": "1G", "hugepages": "0:180"}), "180 × 1048576 kB = 188743680 kB on node 0"),
        (json!({"hugepagesz": "1G", "hugepages": "2:4"}), "this host has no NUMA node 2"),
        (json!({"hugepagesz": "huge", "hugepages": 4}), "option args: hugepagesz: `huge` is not a page size"),
        // 300 GiB leaves the OS more than its 37.6 GiB.
        (json!({"hugepagesz": "1G", "hugepages": 300}), ""),
    ] {
        let a = json!({"root": root, "args": args, "_ansible_check_mode": true});
        let (out, code) = run_module("lltune_kernel_args", &a);
        if want.is_empty() {
            assert_eq!(code, 0, "{out}");
            assert_eq!(out["changed"], true, "{out}");
            continue;
        }
        assert_eq!(code, 1, "{args}: {out}");
        let msg = out["msg"].as_str().unwrap();
        assert!(msg.contains(want), "{msg} !~ {want}");
        assert!(msg.starts_with("option args: hugepages"), "{msg}");
    }
    assert_same_tree(&before, &tree_snapshot(root), "refused runs");
    // The count is read with the size already on the line: hugepagesz=1G stays, and a later
    // task that sets only hugepages=400 asks for 400 GiB.
    let (out, code) = run_module(
        "lltune_kernel_args",
        &json!({"root": root, "args": {"hugepagesz": "1G", "hugepages": 4}, "backup_id": "hp"}),
    );
    assert_eq!(code, 0, "{out}");
    let (out, code) = run_module("lltune_kernel_args", &json!({"root": root, "args": {"hugepages": 400}}));
    assert_eq!(code, 1, "{out}");
    assert!(out["msg"].as_str().unwrap().contains("400 × 1048576 kB = 419430400 kB at boot"), "{}", out["msg"]);
    // Without /proc/meminfo the reserve cannot be checked: the run says so.
    fs::remove_file(root.join("proc/meminfo")).unwrap();
    let (out, code) = run_module(
        "lltune_kernel_args",
        &json!({"root": root, "args": {"hugepages": 400}, "_ansible_check_mode": true}),
    );
    assert_eq!(code, 0, "{out}");
    let warnings = out["warnings"].to_string();
    assert!(warnings.contains("huge pages reserved at boot were not checked"), "{warnings}");
}

/// The config path refuses the same: `lltune audit` errors at the field, `apply --plan`
/// refuses before any module runs, for a value riding another's, a spelling of off, a
/// blacklist, and boot huge pages past the reserve of a 376 GiB host.
#[test]
fn audit_and_apply_refuse_what_the_module_refuses() {
    let dir = boot_fixture("rhel9-bls");
    let root = dir.path();
    host_376g(root);
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.yaml");
    let (root_s, cfg_s) = (root.to_str().unwrap(), cfg.to_str().unwrap());
    let lltune = |args: &[&str]| {
        let out = std::process::Command::new(crate::support::bin("lltune")).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // kernel.cmdline takes the arguments lltune knows; kernel.extra_args any other.
    for (part, args, key, want) in [
        ("cmdline", "skew_tick: \"1 init=/bin/sh\"", "skew_tick", "contains whitespace"),
        ("cmdline", "skew_tick: \"1 rd.break x\"", "skew_tick", "contains whitespace"),
        ("cmdline", "mitigations: \"off,nosmt\"", "mitigations", "allow_dangerous_mitigations"),
        ("extra_args", "kpti: \"N\"", "kpti", "allow_dangerous_mitigations"),
        ("extra_args", "kvm.nx-huge-pages: \"no\"", "kvm.nx-huge-pages", "allow_dangerous_mitigations"),
        ("extra_args", "module_blacklist: nvme", "module_blacklist", "keeps drivers or initcalls from loading"),
        ("extra_args", "console: \"null\"", "console", "console to nowhere"),
        (
            "cmdline",
            "hugepagesz: 1G\n    hugepages: 100000",
            "hugepages",
            "100000 × 1048576 kB = 104857600000 kB at boot",
        ),
    ] {
        let field = format!("kernel.{part}.{key}");
        let text = format!("version: 1\nkernel:\n  {part}:\n    {args}\nsafety:\n  allow_grub_edit: true\n");
        fs::write(&cfg, &text).unwrap();
        let (code, out, err) = lltune(&["audit", "-c", cfg_s, "--root", root_s]);
        assert_eq!(code, Some(1), "audit {text}: {out}{err}");
        let all = format!("{out}{err}");
        assert!(all.contains(&format!("{field}: ")) && all.contains(want), "audit {text}: {all}");
        let start = tree_snapshot(root);
        let (code, out, err) = lltune(&["apply", "-c", cfg_s, "--plan", "--root", root_s]);
        assert_eq!(code, Some(1), "apply --plan {text}: {out}{err}");
        assert!(err.contains(&format!("{field}: ")) && err.contains(want), "apply --plan {text}: {err}");
        assert_same_tree(&start, &tree_snapshot(root), "refused apply --plan");
    }
}
