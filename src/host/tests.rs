use super::*;
use std::fs;

// See: issue 17 (a kill mid-write left hidden temp files that nothing removed).
#[test]
fn stale_temps_of_dead_lltune_writers_go_and_nothing_else() {
    assert_eq!(temp_owner(".grub.lltune-4242-1a2b3c-7"), Some(4242));
    assert_eq!(temp_owner(".lltune-restore.service.lltune-17-l3"), Some(17));
    for not_ours in [
        "grub.lltune-4242-1a2b3c-7", // not hidden
        ".grub.lltune-4242-1a2b3c",  // no sequence
        ".grub.lltune-42x-1a-7",     // pid not a number
        ".grub.lltune-4242-zz-7",    // nanos not hex
        "..lltune-4242-1a-7",        // no target name
        ".grub.lltune-0-1a-7",       // pid 0
        ".grub.lltune-4242-l",       // link temp without sequence
        ".grub.swp",
    ] {
        assert_eq!(temp_owner(not_ours), None, "{not_ours}");
    }
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path()).unwrap();
    let etc = dir.path().join("etc");
    fs::create_dir_all(&etc).unwrap();
    // A pid that cannot be running: above the kernel's pid_max limit (4194304).
    let dead = 4_194_400;
    let live = std::process::id();
    fs::write(etc.join(format!(".a.conf.lltune-{dead}-ff-0")), "x").unwrap();
    std::os::unix::fs::symlink("/x", etc.join(format!(".b.lltune-{dead}-l1"))).unwrap();
    fs::write(etc.join(format!(".c.conf.lltune-{live}-ff-0")), "mine").unwrap(); // our own
    fs::write(etc.join(".d.conf.lltune-1-ff-0"), "init is alive").unwrap();
    fs::create_dir(etc.join(format!(".e.lltune-{dead}-ff-0"))).unwrap(); // a folder
    fs::write(etc.join(".f.conf.swp"), "editor").unwrap();
    let removed = host.remove_stale_temps("/etc").unwrap();
    assert_eq!(removed, [format!("/etc/.a.conf.lltune-{dead}-ff-0"), format!("/etc/.b.lltune-{dead}-l1")]);
    let mut left: Vec<String> =
        fs::read_dir(&etc).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    left.sort();
    assert_eq!(
        left,
        [
            format!(".c.conf.lltune-{live}-ff-0"),
            ".d.conf.lltune-1-ff-0".to_string(),
            format!(".e.lltune-{dead}-ff-0"),
            ".f.conf.swp".to_string()
        ]
    );
    assert!(host.remove_stale_temps("/nonexistent").unwrap().is_empty());
}

#[test]
fn reads_under_root_and_maps_missing_to_none() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("proc")).unwrap();
    fs::write(dir.path().join("proc/cmdline"), "quiet\n").unwrap();
    let host = Host::new(dir.path()).unwrap();
    assert_eq!(host.read("/proc/cmdline").unwrap(), "quiet\n");
    assert_eq!(host.attr("/proc/cmdline").as_deref(), Some("quiet"));
    assert!(host.read_opt("/proc/nope").unwrap().is_none());
    assert_eq!(host.system().kernel(), system::Kernel::Captured);
}

#[test]
fn missing_root_names_the_path() {
    let err = Host::new("/nonexistent/lltune-root").unwrap_err();
    assert_eq!(err.to_string(), "/nonexistent/lltune-root: no such file or directory");
}

#[test]
fn write_atomic_keeps_mode_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::new(dir.path()).unwrap();
    host.write_atomic("/etc/a.conf", b"one\n", Some(FileMeta::private())).unwrap();
    host.write_atomic("/etc/a.conf", b"two\n", None).unwrap();
    assert_eq!(host.read("/etc/a.conf").unwrap(), "two\n");
    assert_eq!(host.file_meta("/etc/a.conf").unwrap().unwrap().mode, 0o600);
    assert_eq!(host.list("/etc").unwrap(), vec!["a.conf".to_string()]);
}

#[test]
fn recording_host_remembers_reads() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("x"), "1").unwrap();
    let host = Host::recording(dir.path()).unwrap();
    host.attr("/x");
    host.attr("/missing");
    let r = host.recorded();
    assert!(r.files.contains("/x"));
}

#[test]
fn the_cached_resolver_agrees_with_the_walk_on_every_path_of_a_tree() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    fs::create_dir_all(r.join("sys/devices/pci0000:00/0000:00:01.0/net/eth0")).unwrap();
    fs::create_dir_all(r.join("sys/class/net")).unwrap();
    fs::create_dir_all(r.join("sys/bus/pci/devices")).unwrap();
    fs::write(r.join("sys/devices/pci0000:00/0000:00:01.0/net/eth0/mtu"), "1500\n").unwrap();
    symlink("../../devices/pci0000:00/0000:00:01.0/net/eth0", r.join("sys/class/net/eth0")).unwrap();
    symlink("../../../devices/pci0000:00/0000:00:01.0", r.join("sys/bus/pci/devices/0000:00:01.0")).unwrap();
    symlink("/sys/class/net/eth0", r.join("abs")).unwrap();
    symlink("sys/class/./net/../net/eth0", r.join("odd")).unwrap();
    symlink("../../../../../..", r.join("sys/up")).unwrap();
    symlink("loop", r.join("loop")).unwrap();
    let host = Host::new(r).unwrap();
    let root = fs::canonicalize(r).unwrap();
    let targets = [
        "/sys/class/net/eth0/mtu",
        "/sys/class/net/eth0",
        "/sys/bus/pci/devices/0000:00:01.0/net/eth0/mtu",
        "/abs/mtu",
        "/odd/mtu",
        "/sys/up/x",
        "/loop",
        "/sys/class/net/missing/x",
        "/sys/class/net/eth0/../eth0/mtu",
    ];
    for t in targets {
        for follow in [true, false] {
            let walk = resolve::resolve(&root, t, follow).map_err(|e| format!("{:?}", std::mem::discriminant(&e)));
            let fast = host.resolve(t, follow);
            match (&walk, &fast) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{t} follow={follow}"),
                (Err(_), Err(_)) => {}
                _ => panic!("{t} follow={follow}: walk {walk:?} vs cached {fast:?}"),
            }
        }
    }
    assert_eq!(host.read("/sys/bus/pci/devices/0000:00:01.0/net/eth0/mtu").unwrap(), "1500\n");
    assert!(matches!(host.resolve("/sys/up/x", true), Err(HostError::Outside { .. })));
}

/// The caches a scan leans on (folders known absent, paths known not to be links,
/// folders guessed from their parent and checked by openat2) answer as the disk does,
/// also after lltune itself creates a folder or a link, and never lead out of root.
#[test]
fn read_caches_agree_with_the_disk_and_keep_links_contained() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("node"), "outside\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    fs::create_dir_all(r.join("proc/irq/1")).unwrap();
    fs::create_dir_all(r.join("real/2")).unwrap();
    fs::write(r.join("proc/irq/1/node"), "0\n").unwrap();
    fs::write(r.join("real/2/node"), "1\n").unwrap();
    fs::write(r.join("proc/irq/file"), "x\n").unwrap();
    symlink("../../real/2", r.join("proc/irq/2")).unwrap();
    // An absolute link names a path under root (chroot-like); `..` past root leads out.
    symlink(outside.path(), r.join("proc/irq/5")).unwrap();
    let up = "../".repeat(r.components().count() + 2) + outside.path().to_str().unwrap().trim_start_matches('/');
    symlink(&up, r.join("proc/irq/3")).unwrap();
    assert_eq!(fs::read_to_string(r.join("proc/irq/3/node")).unwrap(), "outside\n", "the link does lead out");
    let host = Host::new(r).unwrap();
    host.list("/proc/irq").unwrap();
    assert_eq!(host.attr("/proc/irq/default_smp_affinity"), None);
    // Guessed folders: a real one, a link inside root, a link out of it.
    assert_eq!(host.attr("/proc/irq/1/node").as_deref(), Some("0"));
    assert_eq!(host.attr("/proc/irq/2/node").as_deref(), Some("1"));
    assert!(matches!(host.read("/proc/irq/3/node"), Err(HostError::Outside { .. })));
    assert!(host.read("/proc/irq/5/node").unwrap_err().is_not_found());
    assert_eq!(host.attr("/proc/irq/file/node"), None);
    // A folder found absent, then created by lltune: its files are seen.
    assert_eq!(host.attr("/proc/irq/4/node"), None);
    assert!(!host.exists("/proc/irq/4/node") && host.list("/proc/irq/4").unwrap().is_empty());
    assert!(!host.is_dir("/proc/irq/4") && !host.is_dir("/proc/irq/4/x"));
    host.write_atomic("/proc/irq/4/node", b"2\n", None).unwrap();
    assert_eq!(host.attr("/proc/irq/4/node").as_deref(), Some("2"));
    assert!(host.is_dir("/proc/irq/4") && host.is_dir("/proc/irq/2") && host.is_dir("/proc/irq/1"));
    assert!(!host.is_dir("/proc/irq/3") && !host.is_dir("/proc/irq/file"));
    // A path found not to be a link, then made one by lltune: read_link sees the link.
    assert_eq!(host.read_link("/proc/irq/file"), None);
    host.symlink("/proc/irq/file", "1").unwrap();
    assert_eq!(host.read_link("/proc/irq/file").as_deref(), Some("1"));
    assert_eq!(host.read_link("/proc/irq/1"), None);
}

#[test]
fn a_folder_swapped_for_a_link_after_the_walk_does_not_lead_out() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), "outside\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("etc")).unwrap();
    fs::write(dir.path().join("etc/secret"), "inside\n").unwrap();
    let host = Host::new(dir.path()).unwrap();
    // The walk resolved /etc; then someone replaces the folder with a link out of root.
    let real = host.join(&host.resolve("/etc/secret", true).unwrap());
    fs::rename(dir.path().join("etc"), dir.path().join("etc.old")).unwrap();
    symlink(outside.path(), dir.path().join("etc")).unwrap();
    let e = host.open_beneath(&real, libc::O_RDONLY, 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
    // The same through the public API: the cached folder is stale, the kernel refuses,
    // the walk then sees the link and refuses it too (it leaves root).
    let err = host.read("/etc/secret").unwrap_err();
    assert!(matches!(err, HostError::Outside { .. } | HostError::Loop { .. }), "{err}");
    // And a write: nothing lands outside.
    assert!(host.write_atomic("/etc/new.conf", b"x\n", None).is_err());
    assert!(!outside.path().join("new.conf").exists());
    // Removals, links and folders: nothing outside changes either.
    let _ = host.remove("/etc/secret");
    let _ = host.symlink("/etc/link", "/x");
    let _ = host.create_dir_all("/etc/sub/dir");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 1);
    assert_eq!(fs::read_to_string(outside.path().join("secret")).unwrap(), "outside\n");
}

/// The seam is chosen once, from the root: `/` is the running system, any other root a tree.
/// A tree plans no command and refuses to run one, to start a unit or to send an ethtool
/// request, even when asked directly (an action planned elsewhere cannot act through it).
#[test]
fn the_seam_is_chosen_by_the_root_and_a_tree_never_acts_on_the_running_system() {
    use system::{EthtoolStore, Kernel, NotRunning};
    let dir = tempfile::tempdir().unwrap();
    let tree = Host::new(dir.path()).unwrap();
    let live = Host::new("/").unwrap();
    assert_eq!((live.system().kernel(), live.system().ethtool_store()), (Kernel::Running, EthtoolStore::Kernel));
    assert_eq!((tree.system().kernel(), tree.system().ethtool_store()), (Kernel::Captured, EthtoolStore::Capture));
    assert_eq!((live.system().can_act(), tree.system().can_act()), (Ok(()), Err(NotRunning)));
    assert_eq!(live.system().source(live.root()), "live");
    assert_eq!(tree.system().source(tree.root()), tree.root().display().to_string());

    let snap = tree.system().ethtool_snapshot("eth0");
    assert!(snap.drvinfo.is_err() && snap.features.is_err() && snap.channels.is_err());

    let witness = dir.path().join("ran");
    let argv: Vec<String> = vec!["touch".into(), witness.display().to_string()];
    assert_eq!(live.system().plan_command(argv.clone()), Ok(argv.clone()));
    assert_eq!(tree.system().plan_command(argv.clone()), Err(NotRunning));
    let e = tree.system().run(&argv).unwrap_err().to_string();
    assert!(e.contains("refused, root is not /"), "{e}");
    assert!(!witness.exists(), "a tree ran a command");
    // The live implementation does run it (a harmless command on a path of the test's own).
    live.system().run(&argv).unwrap();
    assert!(witness.exists());
    let failing = live.system().run(&["false".to_string()]).unwrap_err().to_string();
    assert!(failing.contains("exit status: 1"), "{failing}");

    assert_eq!(tree.system().unit_active("sshd.service").unwrap_err(), NotRunning);
    let e = tree.system().set_unit_active("sshd.service", false).unwrap_err().to_string();
    assert_eq!(e, "systemctl stop sshd.service: refused, root is not /");
    let e = live.system().set_unit_active("-H evil", true).unwrap_err().to_string();
    assert_eq!(e, "\"-H evil\" is not a unit name");
    assert!(tree.system().architecture().is_none());

    use crate::sys::ethtool_group::Group;
    let e = tree.system().ethtool_read("lo", Group::Rings).unwrap_err();
    assert!(!e.is_unsupported(), "a refusal must not pass for an unsupported group: {e}");
    assert!(tree.system().ethtool_features("lo").is_err());
    let e = tree.system().ethtool_write("lo", Group::Rings, &serde_json::Map::new()).unwrap_err().to_string();
    assert!(e.contains("only set on a live host"), "{e}");
}
