//! lltune_threads: processes the test starts, on this machine's kernel, inside a private PID
//! namespace (its /proc lists only them, so nothing else on the machine is moved); a fixture
//! tree's /proc planned and nothing acted; the refusals.
//!
//! The live test re-runs itself under `unshare --pid --fork --mount --mount-proc` and mounts
//! a tmpfs on /var/lib there, so the journal of a run on `/` stays inside the test.

use std::fs;
use std::path::Path;
use std::process::{Child, Command};

use lltune::cpulist::CpuList;
use lltune::facts::threads::{self, Sched, ThreadId};
use lltune::host::Host;
use lltune::sys::sched::{self, Policy};
use serde_json::{Value, json};

use crate::support::{self, host_fixture, run_module, sh, tree_snapshot};

/// A `sleep` under another name (the thread name is the program file's name).
fn spawn_as(dir: &Path, name: &str) -> Child {
    let exe = dir.join(name);
    if !exe.exists() {
        fs::copy("/bin/sleep", &exe).unwrap();
    }
    Command::new(&exe).arg("600").spawn().unwrap()
}

fn task(pid: u32) -> threads::Task {
    threads::read_task(&Host::new("/").unwrap(), pid, pid).unwrap_or_else(|| panic!("no thread {pid}"))
}

fn cpus(pid: u32) -> String {
    task(pid).affinity.to_string()
}

fn policy(pid: u32) -> (Option<Policy>, u32) {
    let t = task(pid);
    (t.policy, t.priority)
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v[key].as_array().unwrap().iter().map(|t| t["comm"].as_str().unwrap().to_string()).collect()
}

#[test]
fn lltune_threads_moves_the_tests_processes_in_a_pid_namespace() {
    support::in_pidns("change_threads::lltune_threads_moves_the_tests_processes_in_a_pid_namespace", in_namespace);
}

fn in_namespace() {
    let online = fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    if CpuList::parse(&online).unwrap().len() < 2 {
        return support::skip_unless_ci("lltune_threads live test: needs 2 online CPUs");
    }
    sh("mount", &["-t", "tmpfs", "tmpfs", "/var/lib"]);
    let bins = tempfile::tempdir().unwrap();
    let mut plain = spawn_as(bins.path(), "plainsleep");
    let mut kept = spawn_as(bins.path(), "keepme");
    let mut rt = spawn_as(bins.path(), "rtworker");
    let mut doomed = spawn_as(bins.path(), "doomed");
    let all = CpuList::parse("0-1").unwrap();
    for c in [&plain, &kept, &rt, &doomed] {
        sched::set_affinity(c.id(), &all).unwrap();
    }
    let (p, k, r, d) = (plain.id(), kept.id(), rt.id(), doomed.id());
    assert_eq!((cpus(p), policy(r)), ("0-1".to_string(), (Some(Policy::Other), 0)));

    let args = json!({
        "isolated_cpus": 1,
        "keep": ["keep*"],
        "priorities": [{"match": "rtworker", "policy": "fifo", "priority": 5}],
    });
    let with = |extra: Value| {
        let mut a = args.clone();
        for (key, v) in extra.as_object().unwrap() {
            a[key] = v.clone();
        }
        a
    };

    // Check mode: the plan, nothing set, no bundle.
    let (check, code) = run_module(
        "lltune_threads",
        &with(json!({"_ansible_check_mode": true, "_ansible_diff": true, "backup_id": "t1"})),
    );
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["changed"], true, "{check}");
    assert_eq!((cpus(p), cpus(r), policy(r)), ("0-1".into(), "0-1".into(), (Some(Policy::Other), 0)));
    assert!(!Path::new("/var/lib/lltune/backups/t1").exists());
    let diff = check["diff"][0]["after"].as_str().unwrap();
    assert!(diff.contains(&format!("{p} (plainsleep): cpus 0, other 0")), "{diff}");
    assert!(diff.contains(&format!("{r} (rtworker): cpus 0, fifo 5")), "{diff}");
    assert!(!diff.contains("keepme"), "{diff}");
    let plan = check["threads"].as_array().unwrap();
    let mine = plan.iter().find(|t| t["tid"] == p).unwrap();
    assert_eq!(mine["before"], json!({"affinity": "0-1", "policy": "other", "priority": 0}));
    assert_eq!(mine["after"], json!({"affinity": "0", "policy": "other", "priority": 0}));
    let left = check["left"].as_array().unwrap();
    let kept_entry = left.iter().find(|t| t["tid"] == k).unwrap_or_else(|| panic!("{check}"));
    assert_eq!(kept_entry["reason"], "keep pattern keep*");

    // The run: moved, scheduled, the kept one left.
    let (real, code) = run_module("lltune_threads", &with(json!({"_ansible_diff": true, "backup_id": "t1"})));
    assert_eq!(code, 0, "{real}");
    assert_eq!(real["changed"], true);
    assert_eq!(real["backup"], "/var/lib/lltune/backups/t1");
    assert_eq!((cpus(p), cpus(d), cpus(k)), ("0".into(), "0".into(), "0-1".into()));
    assert_eq!((cpus(r), policy(r)), ("0".into(), (Some(Policy::Fifo), 5)));
    assert!(names(&real, "threads").contains(&"plainsleep".to_string()));
    assert_eq!(real["vanished"], json!([]), "{real}");
    let journal: Value = serde_json::from_slice(&fs::read("/var/lib/lltune/backups/t1/journal.json").unwrap()).unwrap();
    let entry = journal["entries"].as_array().unwrap().iter().find(|e| e["thread"]["tid"] == r).unwrap();
    assert_eq!(entry["kind"], "thread");
    assert_eq!(entry["previous"], json!({"affinity": "0-1", "policy": "other", "priority": 0}));
    assert_eq!(entry["thread"]["starttime"], task(r).id.starttime);

    // Again: nothing to change, no bundle.
    let (again, code) = run_module("lltune_threads", &with(json!({"backup_id": "t2"})));
    assert_eq!(code, 0, "{again}");
    assert_eq!(again["changed"], false, "{again}");
    assert!(!Path::new("/var/lib/lltune/backups/t2").exists());

    // A thread that ends between the plan and the write is no failure: nothing to set.
    let host = Host::new("/").unwrap();
    let gone = ThreadId { pid: d, tid: d, starttime: task(d).id.starttime + 1, comm: "doomed".into() };
    let to = Sched { affinity: CpuList::parse("1").unwrap(), policy: Policy::Other, priority: 0 };
    assert!(!lltune::engine::state::set_thread(&host, &gone, &to).unwrap());
    assert_eq!(cpus(d), "0", "another thread with the same id was changed");

    // One of the threads ends; rollback puts the others back and names it.
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    let (rb, code) = run_module("lltune_rollback", &json!({"backup": "t1"}));
    assert_eq!(code, 0, "{rb}");
    assert_eq!(rb["changed"], true);
    assert_eq!((cpus(p), cpus(k)), ("0-1".into(), "0-1".into()));
    assert_eq!((cpus(r), policy(r)), ("0-1".into(), (Some(Policy::Other), 0)));
    let gone: Vec<&str> = rb["gone"].as_array().unwrap().iter().map(|g| g.as_str().unwrap()).collect();
    assert!(gone.contains(&format!("{d} (doomed)").as_str()), "{rb}");
    assert!(rb["warnings"].to_string().contains("no longer run"), "{rb}");
    let kinds: Vec<&str> = rb["restored"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert!(kinds.iter().all(|k| *k == "thread") && !kinds.is_empty(), "{rb}");

    // The default priorities (TuneD's realtime groups) touch none of these threads.
    let (defaults, code) = run_module("lltune_threads", &json!({"_ansible_check_mode": true}));
    assert_eq!(code, 0, "{defaults}");
    assert_eq!(defaults["changed"], false, "{defaults}");
    for c in [&mut plain, &mut kept, &mut rt] {
        c.kill().unwrap();
        c.wait().unwrap();
    }
}

/// A stat line as the kernel writes it (fields 1-52), with the fields lltune reads.
fn stat(pid: u32, comm: &str, flags: u64, starttime: u64, rt: u32, policy: u32) -> String {
    format!(
        "{pid} ({comm}) S 2 {pid} {pid} 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 {starttime} 0 0 18446744073709551615 \
         0 0 0 0 0 0 0 0 0 0 0 0 17 0 {rt} {policy} 0 0 0 0 0 0 0 0 0 0 0\n"
    )
}

/// Adds to the tree at `root` a /proc with a process of two threads on every CPU, kthreadd,
/// a bound per-CPU ksoftirqd on CPU 3, a threaded IRQ handler, and 4 online CPUs.
pub fn add_proc(root: &Path) {
    let task = |pid: u32, tid: u32, comm: &str, flags: u64, cpus: &str, rt: u32, policy: u32| {
        let dir = root.join(format!("proc/{pid}/task/{tid}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("stat"), stat(tid, comm, flags, 1000 + u64::from(tid), rt, policy)).unwrap();
        fs::write(dir.join("status"), format!("Name:\t{comm}\nCpus_allowed_list:\t{cpus}\n")).unwrap();
    };
    let kthread = threads::PF_KTHREAD;
    task(2, 2, "kthreadd", kthread, "0-3", 0, 0);
    task(15, 15, "ksoftirqd/3", kthread | threads::PF_NO_SETAFFINITY, "3", 0, 0);
    task(90, 90, "irq/42-eth0", kthread, "0-3", 50, 1);
    task(100, 100, "app", 0x40_0000, "0-3", 0, 0);
    task(100, 101, "app worker", 0x40_0000, "0-3", 0, 0);
    task(200, 200, "pinned", 0x40_0000, "3", 0, 0);
    let cpu = root.join("sys/devices/system/cpu");
    fs::create_dir_all(&cpu).unwrap();
    fs::write(cpu.join("online"), "0-3\n").unwrap();
}

#[test]
fn a_tree_is_planned_from_its_proc_and_nothing_is_acted() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    add_proc(root);
    let start = tree_snapshot(root);
    let args = json!({"root": root, "isolated_cpus": "2-3", "_ansible_diff": true});
    let (v, code) = run_module("lltune_threads", &args);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], false, "{v}");
    assert!(v.get("diff").is_none_or(|d| d == &json!([])), "{v}");
    assert_eq!(tree_snapshot(root), start, "a tree run wrote");
    let w = v["warnings"].to_string();
    assert!(w.contains("5 thread change(s) planned from this tree's /proc and not carried out (root is not /)"), "{v}");
    let plan: Vec<(u64, String, String)> = v["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let a = &t["after"];
            (
                t["tid"].as_u64().unwrap(),
                a["affinity"].as_str().unwrap().into(),
                format!("{} {}", a["policy"], a["priority"]),
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        plan,
        [
            (2, s("0-1"), s("\"other\" 0")),
            (15, s("3"), s("\"fifo\" 2")),
            // Threaded handlers are movable; the default rule keeps them at FIFO 50.
            (90, s("0-1"), s("\"fifo\" 50")),
            (100, s("0-1"), s("\"other\" 0")),
            (101, s("0-1"), s("\"other\" 0")),
        ]
    );
    let left: Vec<(u64, String)> = v["left"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["tid"].as_u64().unwrap(), t["reason"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(left, [(15, s("per-CPU kernel thread")), (200, s("allowed only on isolated CPUs"))]);

    // housekeeping_cpus: the moved threads go there; priorities [] sets none.
    let (v, code) = run_module(
        "lltune_threads",
        &json!({"root": root, "isolated_cpus": "2-3", "housekeeping_cpus": "1", "priorities": []}),
    );
    assert_eq!(code, 0, "{v}");
    let after: Vec<&str> =
        v["threads"].as_array().unwrap().iter().map(|t| t["after"]["affinity"].as_str().unwrap()).collect();
    assert_eq!(after, ["1", "1", "1", "1"], "{v}");

    // Processes in cpuset cgroups (what /proc/PID/cpuset names; v2 and v1 layouts): the kernel
    // would refuse a mask its cpuset allows none of (EINVAL) and cut one it allows in part, so
    // the plan asks for what the cpuset allows. `boxed` (cgroup v2 /box, CPUs 0,2-3: none of
    // housekeeping_cpus 1) goes to its own CPU off the isolated ones, with a warning; `legacy`
    // (v1 /legacy, effective CPUs 1-3) gets 1; `nested` (v2 /box/inner, whose folder has no
    // cpuset file of its own: its parent's applies) is like `boxed`; `open` (cpuset /, the
    // root's 0-3) gets housekeeping_cpus as given.
    let proc_task = |pid: u32, comm: &str, cpus: &str, cpuset: &str| {
        let dir = root.join(format!("proc/{pid}/task/{pid}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("stat"), stat(pid, comm, 0x40_0000, 5000 + u64::from(pid), 0, 0)).unwrap();
        fs::write(dir.join("status"), format!("Name:\t{comm}\nCpus_allowed_list:\t{cpus}\n")).unwrap();
        fs::write(root.join(format!("proc/{pid}/cpuset")), format!("{cpuset}\n")).unwrap();
    };
    proc_task(300, "boxed", "0,2-3", "/box");
    proc_task(301, "legacy", "1-3", "/legacy");
    proc_task(302, "nested", "0,3", "/box/inner");
    proc_task(303, "open", "0-3", "/");
    let cg = root.join("sys/fs/cgroup");
    fs::create_dir_all(cg.join("box/inner")).unwrap();
    fs::create_dir_all(cg.join("cpuset/legacy")).unwrap();
    fs::write(cg.join("cpuset.cpus.effective"), "0-3\n").unwrap();
    fs::write(cg.join("box/cpuset.cpus.effective"), "0,2-3\n").unwrap();
    fs::write(cg.join("cpuset/legacy/cpuset.effective_cpus"), "1-3\n").unwrap();
    let (v, code) = run_module(
        "lltune_threads",
        &json!({"root": root, "isolated_cpus": "2-3", "housekeeping_cpus": "1", "priorities": []}),
    );
    assert_eq!(code, 0, "{v}");
    let moved: Vec<(u64, &str)> = v["threads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["pid"].as_u64().unwrap() >= 300)
        .map(|t| (t["tid"].as_u64().unwrap(), t["after"]["affinity"].as_str().unwrap()))
        .collect();
    assert_eq!(moved, [(300, "0"), (301, "1"), (302, "0"), (303, "1")], "{v}");
    let w = v["warnings"].to_string();
    assert!(
        w.contains("2 thread(s) moved to their own CPUs off isolated_cpus, not to housekeeping_cpus, which their cpuset cgroup does not allow")
            && w.contains("(cpuset /box: CPUs 0,2-3)")
            && w.contains("(cpuset /box/inner: CPUs 0,2-3)"),
        "{v}"
    );

    // A tree without /proc: nothing to plan, said so.
    let bare = host_fixture("el9-trading");
    let (v, code) = run_module("lltune_threads", &json!({"root": bare.path(), "isolated_cpus": "1"}));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["changed"], false);
    assert!(v["warnings"][0].as_str().unwrap().contains("no threads to plan for"), "{v}");
}

#[test]
fn bad_options_fail_naming_the_option_and_touch_nothing() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    add_proc(root);
    let start = tree_snapshot(root);
    for (args, want) in [
        (json!({"isolated_cpus": "0-3"}), "option isolated_cpus: 0-3 covers every online CPU"),
        (json!({"isolated_cpus": "1-x"}), "option isolated_cpus: invalid CPU list"),
        (
            json!({"isolated_cpus": "2", "housekeeping_cpus": "2-3"}),
            "option housekeeping_cpus: CPUs 2 are isolated too",
        ),
        (json!({"isolated_cpus": "2", "housekeeping_cpus": "7"}), "option housekeeping_cpus: CPUs 7 are not online"),
        (json!({"housekeeping_cpus": "0"}), "option housekeeping_cpus: only with isolated_cpus"),
        (
            json!({"priorities": [{"match": "x", "policy": "fifo", "priority": 0}]}),
            "option priorities[0].priority: fifo takes 1 to 99, got 0",
        ),
        (
            json!({"priorities": [{"match": "x", "policy": "other", "priority": 3}]}),
            "option priorities[0].priority: other takes 0, got 3",
        ),
        (
            json!({"priorities": [{"match": "[", "policy": "rr", "priority": 3}]}),
            "option priorities[0].match: \"[\" is not a glob",
        ),
        (json!({"priorities": [{"match": "x", "policy": "deadline", "priority": 3}]}), "unknown variant `deadline`"),
        (json!({"keep": [""]}), "option keep: a thread name pattern is 1 to 256 characters"),
        (json!({"isolate": "1"}), "unsupported option isolate"),
    ] {
        let mut a = args.clone();
        a["root"] = json!(root);
        let (v, code) = run_module("lltune_threads", &a);
        assert_eq!(code, 1, "{args}: {v}");
        assert!(v["msg"].as_str().unwrap().contains(want), "{args}: {v}");
    }
    assert_eq!(tree_snapshot(root), start);
}

fn lltune(args: &[&str], root: &Path) -> (i32, String) {
    let out = Command::new(support::bin("lltune")).args(args).arg("--root").arg(root).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// `lltune apply` carries out the `threads` section (on a tree: the plan and the persisted
/// rules), `lltune reapply` runs the rules again at "boot", rollback gives the tree back.
#[test]
fn apply_persists_the_threads_section_and_reapply_runs_it() {
    let dir = host_fixture("el9-trading");
    let root = dir.path();
    add_proc(root);
    let cfg = tempfile::NamedTempFile::new().unwrap();
    fs::write(
        cfg.path(),
        "version: 1\ncpu:\n  isolate_cores: 2-3\nthreads:\n  keep: [\"app*\"]\n  priorities:\n    - {match: \"ksoftirqd/*\", policy: fifo, priority: 3}\n",
    )
    .unwrap();
    let c = cfg.path().to_str().unwrap();
    let start = tree_snapshot(root);
    let (code, plan) = lltune(&["apply", "-c", c, "--plan"], root);
    assert_eq!(code, 0, "{plan}");
    assert!(plan.contains("lltune_threads") && !plan.contains("not implemented"), "{plan}");
    // kthreadd and irq/42-eth0 moved, ksoftirqd/3 at FIFO 3; app and its worker kept.
    assert!(plan.contains("3 thread change(s) planned from this tree's /proc and not carried out"), "{plan}");
    assert_eq!(tree_snapshot(root), start);
    let (code, out) = lltune(&["apply", "-c", c, "--backup-id", "a1"], root);
    assert_eq!(code, 0, "{out}");
    let state: Value =
        serde_json::from_slice(&fs::read(root.join("etc/lltune/state.d/lltune_threads.json")).unwrap()).unwrap();
    assert_eq!(
        state["params"],
        json!({"isolated_cpus": "2-3", "keep": ["app*"],
               "priorities": [{"match": "ksoftirqd/*", "policy": "fifo", "priority": 3}]}),
        "{state}"
    );
    let (code, out) = lltune(&["reapply"], root);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("lltune_threads: already in place"), "{out}");
    let (code, out) = lltune(&["rollback", "--backup", "a1"], root);
    assert_eq!(code, 0, "{out}");
    let mut now = tree_snapshot(root);
    now.retain(|k, _| !k.starts_with("var"));
    let mut was = start.clone();
    was.retain(|k, _| !k.starts_with("var"));
    assert_eq!(now, was, "after rollback");
}
