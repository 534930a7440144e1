//! The collection through real Ansible: the pinned ansible-core (tests/ansible-core.pin, in a
//! venv that `support::ansible()` makes once per build), `ansible-doc` on the sidecar
//! documentation, and `ansible-playbook -i localhost, -c local` running the module binaries
//! cargo built, from the collection `support::collection_dir()` assembles out of `ansible/`.
//! Every run is sealed in a temp folder (HOME, Ansible's temp folders, config).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{self, Run};

fn doc(sandbox: &Path, args: &[&str]) -> Run {
    support::run_ansible(&support::ansible().doc, sandbox, args, None)
}

fn playbook(sandbox: &Path, args: &[&str]) -> Run {
    support::run_ansible(&support::ansible().playbook, sandbox, args, None)
}

/// The sidecar documentation as ansible-doc sees it (`-j`).
fn doc_json(sandbox: &Path) -> Value {
    let r = doc(sandbox, &["-j", "lltune.tuning.lltune_facts"]);
    assert_eq!(r.code, 0, "{}", r.show());
    let v: Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("ansible-doc -j is not JSON ({e}): {}", r.show()));
    v["lltune.tuning.lltune_facts"].clone()
}

/// Every key of a RETURN tree, depth first (`contains` nests).
fn return_keys(tree: &Value, out: &mut Vec<String>) {
    if let Some(m) = tree.as_object() {
        for (k, v) in m {
            out.push(k.clone());
            return_keys(&v["contains"], out);
        }
    }
}

/// A tiny host tree in the kernel's formats.
fn tiny_tree(dir: &Path) {
    let files = [
        ("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro isolcpus=2-3\n"),
        ("proc/sys/kernel/osrelease", "6.1.0-18-amd64\n"),
        ("sys/devices/system/cpu/online", "0-3\n"),
    ];
    for (path, text) in files {
        let p = dir.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
}

#[test]
fn ansible_doc_renders_lltune_facts() {
    let sandbox = tempfile::tempdir().unwrap();
    let r = doc(sandbox.path(), &["lltune.tuning.lltune_facts"]);
    assert_eq!(r.code, 0, "{}", r.show());
    assert_eq!(support::ansible_stderr_problems(&r.stderr), Vec::<String>::new(), "ansible-doc warned: {}", r.show());
    for needle in ["lltune.tuning.lltune_facts", "OPTIONS", "ATTRIBUTES", "EXAMPLES", "RETURN VALUES", "detail", "root"]
    {
        assert!(r.stdout.contains(needle), "no {needle:?} in {}", r.show());
    }
    // Every documented return key is rendered, nested ones included.
    let d = doc_json(sandbox.path());
    let mut keys = Vec::new();
    return_keys(&d["return"], &mut keys);
    assert!(keys.len() > 40, "RETURN is too thin: {keys:?}");
    for k in &keys {
        assert!(r.stdout.contains(k.as_str()), "RETURN key {k} is not rendered:\n{}", r.stdout);
    }
    assert_eq!(d["doc"]["options"]["detail"]["type"], json!("bool"));
    assert_eq!(d["doc"]["options"]["detail"]["default"], json!(false));
    assert_eq!(d["doc"]["options"]["root"]["type"], json!("path"));
    assert_eq!(d["doc"]["options"]["root"]["default"], json!("/"));
    assert_eq!(d["doc"]["attributes"]["check_mode"]["support"], json!("full"));
    assert_eq!(d["doc"]["attributes"]["diff_mode"]["support"], json!("none"));
    assert_eq!(d["doc"]["attributes"]["facts"]["support"], json!("full"));
}

#[test]
fn ansible_doc_options_are_the_options_the_module_accepts() {
    let sandbox = tempfile::tempdir().unwrap();
    let d = doc_json(sandbox.path());
    let documented: BTreeSet<String> = d["doc"]["options"].as_object().unwrap().keys().cloned().collect();
    // The module names what it supports when given something it does not.
    let (v, _) = support::run_module("lltune_facts", &json!({"no_such_option": 1}));
    let msg = v["msg"].as_str().unwrap();
    let supported: BTreeSet<String> = msg
        .split_once("supported options: ")
        .unwrap_or_else(|| panic!("{msg}"))
        .1
        .split(", ")
        .map(str::to_string)
        .collect();
    assert_eq!(documented, supported);
}

#[test]
fn ansible_doc_return_documents_every_top_level_fact() {
    let sandbox = tempfile::tempdir().unwrap();
    let tree = sandbox.path().join("tree");
    tiny_tree(&tree);
    let (v, code) = support::run_module("lltune_facts", &json!({"root": tree, "detail": true}));
    assert_eq!(code, 0, "{v}");
    let emitted: BTreeSet<String> = v["ansible_facts"]["lltune"].as_object().unwrap().keys().cloned().collect();
    let d = doc_json(sandbox.path());
    let documented: BTreeSet<String> =
        d["return"]["ansible_facts"]["contains"]["lltune"]["contains"].as_object().unwrap().keys().cloned().collect();
    let missing: Vec<&String> = emitted.difference(&documented).collect();
    assert!(missing.is_empty(), "facts not in RETURN of plugins/modules/lltune_facts.yml: {missing:?}");
    let stale: Vec<&String> = documented.difference(&emitted).collect();
    assert!(stale.is_empty(), "RETURN documents facts the module does not emit: {stale:?}");
}

/// Every module of the collection: the stem of each sidecar `ansible/plugins/modules/*.yml`,
/// with its documentation.
fn sidecars() -> Vec<(String, serde_yaml::Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible/plugins/modules");
    let mut out: Vec<(String, serde_yaml::Value)> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .map(|p| {
            let doc = serde_yaml::from_slice(&fs::read(&p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_stem().unwrap().to_string_lossy().into_owned(), doc)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.iter().any(|(m, _)| m == "lltune_facts"), "no sidecar for lltune_facts");
    out
}

#[test]
fn ansible_doc_renders_every_module() {
    let sandbox = tempfile::tempdir().unwrap();
    for (module, sidecar) in sidecars() {
        let fqcn = format!("lltune.tuning.{module}");
        let r = doc(sandbox.path(), &[&fqcn]);
        assert_eq!(r.code, 0, "{fqcn}: {}", r.show());
        assert_eq!(
            support::ansible_stderr_problems(&r.stderr),
            Vec::<String>::new(),
            "{fqcn}: ansible-doc warned: {}",
            r.show()
        );
        assert!(r.stdout.contains(&fqcn), "{}", r.show());
        let options = sidecar["DOCUMENTATION"]["options"]
            .as_mapping()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_else(Vec::new);
        for o in options {
            let o = o.as_str().unwrap();
            assert!(r.stdout.contains(o), "{fqcn}: option {o} is not rendered:\n{}", r.stdout);
        }
        let mut keys = Vec::new();
        let ret: Value = serde_json::to_value(&sidecar["RETURN"]).unwrap();
        return_keys(&ret, &mut keys);
        assert!(!keys.is_empty(), "{fqcn}: the sidecar has no RETURN");
        for k in &keys {
            assert!(r.stdout.contains(k.as_str()), "{fqcn}: RETURN key {k} is not rendered:\n{}", r.stdout);
        }
    }
}

#[test]
fn ansible_doc_lists_every_module() {
    let sandbox = tempfile::tempdir().unwrap();
    let modules = sidecars();
    // What -l shows for each module: the sidecar's short_description, trailing '.' dropped.
    let want: serde_json::Map<String, Value> = modules
        .iter()
        .map(|(m, d)| {
            let short =
                d["DOCUMENTATION"]["short_description"].as_str().unwrap_or_else(|| panic!("{m}: no short_description"));
            (format!("lltune.tuning.{m}"), json!(short.trim().trim_end_matches('.')))
        })
        .collect();
    let want = Value::Object(want);

    // -F names each module's documentation stub: the comment-only <module>.py beside the
    // binary and its sidecar (ansible-doc cannot read an ELF file as text).
    let r = doc(sandbox.path(), &["-F", "lltune.tuning"]);
    assert_eq!(r.code, 0, "{}", r.show());
    assert_eq!(support::ansible_stderr_problems(&r.stderr), Vec::<String>::new(), "{}", r.show());
    let dir = support::collection_dir().join("ansible_collections/lltune/tuning/plugins/modules");
    for (m, _) in &modules {
        let line = r
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("lltune.tuning.{m} ")))
            .unwrap_or_else(|| panic!("{m}: {}", r.show()));
        assert!(line.trim_end().ends_with(&format!("/plugins/modules/{m}.py")), "{line}");
        let stub = fs::read_to_string(dir.join(format!("{m}.py"))).unwrap_or_else(|e| panic!("{m}.py: {e}"));
        assert!(stub.lines().all(|l| l.is_empty() || l.starts_with('#')), "{m}.py holds more than comments");
        assert_eq!(fs::read_link(dir.join(m)).unwrap(), Path::new("../../binaries").join(m), "{m}");
        let bin = fs::read(dir.join(m)).unwrap();
        assert_eq!(&bin[..4], b"\x7fELF", "{m}: the module file beside the stub is not the binary");
    }

    // -l lists every module with the sidecar's short description and no warning.
    let r = doc(sandbox.path(), &["-l", "-j", "lltune.tuning"]);
    assert_eq!(r.code, 0, "{}", r.show());
    assert_eq!(support::ansible_stderr_problems(&r.stderr), Vec::<String>::new(), "{}", r.show());
    let listed: Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("ansible-doc -l -j is not JSON ({e}): {}", r.show()));
    assert_eq!(listed, want, "{}", r.show());
}

/// Every module documented by a sidecar `plugins/modules/<module>.yml` documents exactly the
/// options its `Params` accepts (plus `root`): the module names them when given one it does
/// not know. New sidecars are picked up from the folder.
#[test]
fn every_sidecar_documents_exactly_the_options_its_module_accepts() {
    let modules = sidecars();
    assert!(
        modules.len() >= 6,
        "only {} sidecars: {:?}",
        modules.len(),
        modules.iter().map(|m| &m.0).collect::<Vec<_>>()
    );
    let mut mismatches = Vec::new();
    for (module, doc) in &modules {
        let options = &doc["DOCUMENTATION"]["options"];
        let documented: BTreeSet<String> = match options {
            serde_yaml::Value::Mapping(m) => {
                m.keys().map(|k| k.as_str().unwrap_or_else(|| panic!("{module}: option {k:?}")).to_string()).collect()
            }
            serde_yaml::Value::Null => BTreeSet::new(),
            other => panic!("{module}: DOCUMENTATION.options is not a mapping: {other:?}"),
        };
        let (v, code) = support::run_module(module, &json!({"zz_not_an_option": 1}));
        assert_eq!((code, &v["failed"]), (1, &json!(true)), "{module} accepted an unknown option: {v}");
        let msg = v["msg"].as_str().unwrap_or_else(|| panic!("{module}: no msg in {v}"));
        let list = msg
            .strip_prefix("unsupported option zz_not_an_option; supported options: ")
            .unwrap_or_else(|| panic!("{module}: unexpected message {msg:?}"));
        assert!(!list.contains("..."), "{module}: the option list is cut: {msg:?}");
        let supported: BTreeSet<String> = list.split(", ").map(str::to_string).collect();
        assert!(supported.contains("root"), "{module}: {msg:?}");
        if documented != supported {
            mismatches.push(format!(
                "{module}: documented but not accepted {:?}; accepted but not documented {:?}",
                documented.difference(&supported).collect::<Vec<_>>(),
                supported.difference(&documented).collect::<Vec<_>>()
            ));
        }
    }
    assert!(mismatches.is_empty(), "sidecar options differ from the modules' Params:\n{}", mismatches.join("\n"));
}

/// A play that gathers lltune facts from `lltune_root` and checks them against
/// `lltune_expected` (the peer tool's values from the real dumps' MANIFEST).
const CHECK_PLAY: &str = r#"---
- name: Check lltune facts of a captured tree
  hosts: all
  gather_facts: false
  tasks:
    - name: Gather lltune facts
      lltune.tuning.lltune_facts:
        root: "{{ lltune_root }}"
      register: __lltune_facts

    - name: Check the run and the layout
      ansible.builtin.assert:
        that:
          - __lltune_facts is not changed
          - __lltune_facts is not failed
          - ansible_check_mode == (lltune_check_mode | bool)
          - ansible_facts.lltune.schema_version == 2
          - ansible_facts.lltune.cpu.sockets == lltune_expected.sockets
          - ansible_facts.lltune.cpu.cores_per_socket == lltune_expected.cores_per_socket
          - ansible_facts.lltune.cpu.threads_per_core == lltune_expected.threads_per_core
          - ansible_facts.lltune.cpu.online == lltune_expected.online

    - name: Check each NIC's driver and NUMA node
      ansible.builtin.assert:
        that:
          - __lltune_nic | length == 1
          - (__lltune_nic | first).driver == item.value.driver
          - (__lltune_nic | first).numa_node == item.value.numa_node
        fail_msg: "{{ item.key }}: expected {{ item.value }}, got {{ __lltune_nic }}"
      vars:
        __lltune_nic: "{{ ansible_facts.lltune.nics | selectattr('name', 'equalto', item.key) | list }}"
      loop: "{{ lltune_expected.nics | dict2items }}"
      loop_control:
        label: "{{ item.key }}"
"#;

/// Runs CHECK_PLAY on one real dump.
fn check_play_on_real_dump(name: &str, check_mode: bool) -> Run {
    let root = support::real_fixture(name);
    let manifest = support::real_manifest();
    let expected = &manifest["fixtures"][name]["expected"];
    assert!(expected.is_object(), "MANIFEST has no expected facts for {name}");
    let sandbox = tempfile::tempdir().unwrap();
    let play = sandbox.path().join("check.yml");
    fs::write(&play, CHECK_PLAY).unwrap();
    let vars = sandbox.path().join("vars.json");
    let vars_json = json!({"lltune_root": root, "lltune_expected": expected, "lltune_check_mode": check_mode});
    fs::write(&vars, vars_json.to_string()).unwrap();
    let extra = format!("@{}", vars.display());
    let mut args = vec!["-i", "localhost,", "-c", "local", "-e", extra.as_str(), play.to_str().unwrap()];
    if check_mode {
        args.push("--check");
    }
    playbook(sandbox.path(), &args)
}

#[test]
fn playbook_gathers_facts_from_a_real_dump() {
    let r = check_play_on_real_dump("hwloc-32intel64-2p8co2t", false);
    assert_eq!(r.code, 0, "{}", r.show());
    let recap = support::play_recap(&r.stdout, "localhost");
    assert_eq!((recap["failed"], recap["changed"], recap["unreachable"]), (0, 0, 0), "{}", r.show());
    assert!(recap["ok"] >= 3, "{}", r.show());
}

#[test]
fn playbook_check_mode_on_a_real_dump_reports_no_change() {
    let r = check_play_on_real_dump("hwloc-32intel64-2p8co2t", true);
    assert_eq!(r.code, 0, "{}", r.show());
    let recap = support::play_recap(&r.stdout, "localhost");
    assert_eq!((recap["failed"], recap["changed"], recap["skipped"]), (0, 0, 0), "{}", r.show());
    assert!(recap["ok"] >= 3, "{}", r.show());
}

#[test]
fn shipped_facts_playbook_prints_a_summary() {
    let sandbox = tempfile::tempdir().unwrap();
    let tree = sandbox.path().join("tree");
    tiny_tree(&tree);
    let play = Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible/playbooks/facts.yml");
    let root = format!("lltune_root={}", tree.display());
    let r = playbook(sandbox.path(), &["-i", "localhost,", "-c", "local", "-e", &root, play.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.show());
    let recap = support::play_recap(&r.stdout, "localhost");
    // The scan (which checks the role's variables on the way), the summary.
    assert_eq!((recap["ok"], recap["changed"], recap["failed"]), (2, 0, 0), "{}", r.show());
    assert!(r.stdout.contains(r#""cmdline": "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro isolcpus=2-3""#), "{}", r.show());
    assert!(r.stdout.contains(r#""schema_version": 2"#), "{}", r.show());
    assert!(!r.stderr.contains("ERROR"), "{}", r.show());
}

/// The summary the facts role printed for `host`: one debug task for the play prints every
/// host's, by host (`ok: [first host] => {"msg": {host: {...}, ...}}`, default callback).
fn debug_msg(stdout: &str, host: &str) -> Value {
    let task = "TASK [lltune.tuning.facts : Show each host's summary]";
    let at = stdout.find(task).unwrap_or_else(|| panic!("no summary task in:\n{stdout}"));
    let rest = &stdout[at..];
    let ok = rest.find("ok: [").unwrap_or_else(|| panic!("the summary task printed nothing:\n{stdout}"));
    let brace = ok + rest[ok..].find("=> ").unwrap() + 3;
    let mut values = serde_json::Deserializer::from_str(&rest[brace..]).into_iter::<Value>();
    let v = values.next().unwrap_or_else(|| panic!("no JSON after the summary task")).unwrap();
    assert!(v["msg"][host].is_object(), "no summary for {host} in {v}");
    v["msg"][host].clone()
}

/// The shipped facts playbook reads `lltune_root` per host: two hosts of one inventory, each
/// with its own tree, each get the facts of their own tree (a play-level var used to override
/// both with `/`); a host without `lltune_root` scans `/`.
#[test]
fn shipped_facts_playbook_honours_each_hosts_lltune_root() {
    let sandbox = tempfile::tempdir().unwrap();
    let vm = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts/debian12-vm");
    let xeon = support::real_fixture("hwloc-32intel64-2p8co2t");
    let inventory = sandbox.path().join("inventory.yml");
    let inv = json!({"all": {"hosts": {
        "vm": {"ansible_connection": "local", "lltune_root": vm},
        "xeon": {"ansible_connection": "local", "lltune_root": xeon},
        "live": {"ansible_connection": "local"},
    }}});
    fs::write(&inventory, serde_yaml::to_string(&inv).unwrap()).unwrap();
    let play = Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible/playbooks/facts.yml");
    let r = playbook(sandbox.path(), &["-i", inventory.to_str().unwrap(), play.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.show());
    // Each host runs the scan (which checks the role's variables); the first one also the
    // summary, one task for the play.
    let (mut ok, mut hosts) = (0, 0);
    for host in ["vm", "xeon", "live"] {
        let recap = support::play_recap(&r.stdout, host);
        assert_eq!((recap["changed"], recap["failed"]), (0, 0), "{host}: {}", r.show());
        assert!(recap["ok"] == 1 || recap["ok"] == 2, "{host}: {}", r.show());
        ok += recap["ok"];
        hosts += 1;
    }
    assert_eq!((ok, hosts), (4, 3), "{}", r.show());
    // Each host's summary names its own root and holds that tree's facts, as a scan of the
    // tree gives them.
    for (host, root) in [("vm", &vm), ("xeon", &xeon)] {
        let msg = debug_msg(&r.stdout, host);
        assert_eq!(msg["root"], root.to_str().unwrap(), "{host}: {msg}");
        let (m, code) = support::run_module("lltune_facts", &json!({"root": root}));
        assert_eq!(code, 0, "{m}");
        let facts = &m["ansible_facts"]["lltune"];
        assert_eq!(msg["cpu"]["online"], facts["cpu"]["online"], "{host}: {msg}");
        assert_eq!(msg["cmdline"], facts["kernel"]["cmdline"], "{host}: {msg}");
    }
    let (vm_msg, xeon_msg) = (debug_msg(&r.stdout, "vm"), debug_msg(&r.stdout, "xeon"));
    assert_eq!((vm_msg["cpu"]["online"].as_str(), vm_msg["kernel"].as_str()), (Some("0-1"), Some("6.18.44-fc-v669")));
    assert_eq!((&xeon_msg["cpu"]["online"], &xeon_msg["cpu"]["sockets"]), (&json!("0-31"), &json!(2)));
    assert_eq!(debug_msg(&r.stdout, "live")["root"], "/", "{}", r.show());
}

/// Every Python package of the test venv is at the version tests/python-constraints.txt
/// fixes, so what the tests run cannot move with a registry's new release.
#[test]
fn python_venv_holds_only_constrained_packages() {
    let venv = support::ansible().venv;
    let installed = support::installed_versions(&venv);
    assert!(installed.contains_key("ansible-core") && installed.contains_key("cryptography"), "{installed:?}");
    assert_eq!(support::unconstrained_packages(&venv), Vec::<String>::new(), "{}", venv.display());
}

/// Each pin file's requirements are in the constraints file at the same version (a pin moved
/// without its constraint would make pip refuse to resolve).
#[test]
fn pin_files_agree_with_the_constraints() {
    let want = support::constrained_versions();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for pin in
        ["tests/ansible-core.pin", "tests/ansible-tools.pin", "tests/prometheus-client.pin", "scripts/zigbuild.pin"]
    {
        let text = fs::read_to_string(root.join(pin)).unwrap_or_else(|e| panic!("{pin}: {e}"));
        for line in text.lines().map(|l| l.split('#').next().unwrap().trim()).filter(|l| !l.is_empty()) {
            let (name, version) =
                line.split_once("==").unwrap_or_else(|| panic!("{pin}: {line:?} is not name==version"));
            let name = support::normalize_dist_name(name);
            assert_eq!(want.get(&name).map(String::as_str), Some(version.trim()), "{pin}: {name}");
            seen += 1;
        }
    }
    assert!(seen >= 6, "only {seen} pinned requirements read");
}

/// What the stderr check lets through: a third-party library's Python warning (with the
/// source line Python prints under it); what it reports: Ansible's warnings, deprecations,
/// errors and tracebacks, and any Python warning raised in this collection's files.
#[test]
fn ansible_stderr_problems_keeps_what_matters() {
    let library = "/v/lib/python3.11/site-packages/ansible/_internal/_ssh/_ssh_agent.py:18: \
                   CryptographyDeprecationWarning: DSA is deprecated and support will be removed.\n  \
                   from cryptography.hazmat.primitives.asymmetric.dsa import (\n";
    assert_eq!(support::ansible_stderr_problems(library), Vec::<String>::new());
    for problem in [
        "[WARNING]: Collection lltune.tuning does not support Ansible version 2.19.14",
        "[DEPRECATION WARNING]: The 'ansible.module_utils.x' is deprecated.",
        "ERROR! the role 'tune' was not found",
        "Traceback (most recent call last):",
        "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xe9 in position 3",
        "/c/ansible_collections/lltune/tuning/plugins/filter/f.py:3: DeprecationWarning: old",
    ] {
        let stderr = format!("{library}{problem}\n  indented detail\n");
        let got = support::ansible_stderr_problems(&stderr);
        assert_eq!(got.first().map(String::as_str), Some(problem), "{stderr}");
        assert_eq!(got.len(), 2, "the indented line under a problem is kept too: {got:?}");
    }
}

/// A config that asks for every argument `config::to_args` can give each module.
const EVERY_ARGUMENT: &str = r#"version: 1
cpu:
  isolate_cores: "2-3"
  governor: {target: "performance"}
  epp: "performance"
  turbo: true
  cstate_limit: 1
  pm_qos_resume_latency_us: {value: 0}
  energy_perf_bias: 0
  uncore: {min_freq_khz: "max", max_freq_khz: "max"}
  mce_ignore_ce: true
kernel:
  cmdline:
    isolcpus: "managed_irq,domain,2-3"
    kthread_cpus: "0-1"
  sysctl:
    timer_migration: 0
memory:
  thp_runtime: "never"
  swap_disable: true
  ksm: false
  hugepages: {size_kb: 2048, per_node: {node0: 16}}
  mlock: {enabled: true, user: "trader", soft: "unlimited", hard: "unlimited"}
  limits: {nofile: 1048576}
network:
  interfaces:
    - name: "eth0"
      offloads: {gro: false}
      coalescing: {rx_usecs: 0}
      rings: {rx: 4096}
      channels: {combined: 2}
      flow_control: {rx: false}
irq:
  manual_affinity:
    - nic: "eth0"
      cpus: "0-1"
  avoid_cores_for_irqs: "2-3"
  default_affinity: "0-1"
  disable_rps: true
threads:
  housekeeping_cores: "0-1"
  keep: ["trader*"]
  priorities: [{match: "ksoftirqd/*", policy: "fifo", priority: 2}]
services:
  irqbalance: false
  tuned: "off"
safety:
  allow_grub_edit: true
onload:
  tuning_level: "ultra_low_latency"
  variables: {EF_RXQ_SIZE: 2048}
  path: "/etc/lltune/onload.sh"
  env_file: "/etc/lltune/onload-svc.env"
time_sync:
  provider: "chrony"
  servers:
    - {hostname: "ntp1.example.com", iburst: true, prefer: true, pool: false, minpoll: 4, maxpoll: 6}
  refclock: {phc: "eth0", poll: 0, dpoll: -2, offset_ns: 0, precision_ns: 1, prefer: true}
  ptp: {interface: "eth0", domain: 24, transport: "L2", delay_mechanism: "P2P", phc2sys: false}
  disable_competing: true
"#;

/// The tune role passes each module every argument the config translation can give it (the
/// role names options one by one: one it leaves out is silently not carried out by a play,
/// while `lltune apply` does carry it out).
#[test]
fn the_tune_role_passes_every_argument_the_translation_gives() {
    // TuneD off (services.tuned.state and enabled), then a TuneD profile (tuned_profile).
    for text in [EVERY_ARGUMENT.to_string(), EVERY_ARGUMENT.replace("tuned: \"off\"", "tuned: \"latency-performance\"")]
    {
        role_passes_every_argument(&text);
    }
}

fn role_passes_every_argument(text: &str) {
    let args = lltune::config::to_args::from_text(text)
        .unwrap_or_else(|issues| panic!("{}", issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("\n")));
    // The module tasks, which the role runs twice (the plan pass in check mode, then for real).
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible/roles/tune/tasks/modules.yml");
    let tasks: serde_yaml::Value = serde_yaml::from_str(&fs::read_to_string(path).unwrap()).unwrap();
    let mut passed: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for task in tasks.as_sequence().unwrap() {
        for (k, v) in task.as_mapping().unwrap() {
            if let (Some(module), Some(opts)) =
                (k.as_str().and_then(|k| k.strip_prefix("lltune.tuning.")), v.as_mapping())
            {
                passed.insert(module.to_string(), opts.keys().filter_map(|o| o.as_str().map(str::to_string)).collect());
            }
        }
    }
    let mut missing = Vec::new();
    for (module, a) in &args.modules {
        let Some(opts) = passed.get(module) else {
            missing.push(format!("{module}: no task"));
            continue;
        };
        for key in a.as_object().unwrap().keys() {
            if !opts.contains(key) {
                missing.push(format!("{module}: {key}"));
            }
        }
        // And why, for the reviewer.
        if !opts.contains("reasons") {
            missing.push(format!("{module}: reasons"));
        }
    }
    assert!(args.modules.len() >= 8, "the config reaches too few modules: {:?}", args.modules.keys());
    assert!(missing.is_empty(), "the tune role does not pass: {missing:?}");
}
