//! `lltune capture`: a .tar.gz of the files lltune reads, so a server can be analysed offline
//! with `lltune scan --root DIR` (the idea of hwloc-gather-topology and sosreport), and tuned
//! as a simulated host with `lltune apply --root DIR` or the modules' `root` option.
//!
//! The scan runs on a recording `Host`; every file it read, folder it listed and link it
//! followed is copied with its sysfs structure: a path that goes through a symbolic link
//! (`/sys/class/net/eth0` → `../../devices/...`) is stored as that link plus the file at the
//! link's destination, so the captured tree resolves like the live one. procfs and sysfs
//! report a size of 0, so each file is read to its end and stored with the size read.
//! What the NIC ioctls answered is stored as JSON beside (see `facts::nic`).
//!
//! Unless `--scan-only`, a capture also holds what a tune run reads and edits: the change
//! modules plan lltune's proposed config for the host in check mode on the same recording
//! host (the run-time files they read), and the configuration files of `apply_patterns`
//! (boot configuration, sysctl and limits files, systemd units and their links, fstab,
//! irqbalance, /etc/lltune) are taken whole. Links there are stored as links, never followed
//! out of the tree; a link's destination is taken only when it is itself on that list.
//!
//! Secrets stay out: `is_secret` refuses a path however it was reached (a link to
//! /etc/shadow is stored as a link, its destination is not read), and of every configuration
//! file only the lines and keys lltune's readers use are kept (`capture_keep`): a unit file
//! keeps its `[Install]` links, fstab its swap lines, /etc/default/grub the kernel command
//! line, never an `Environment=`, a mount's credentials or a GRUB password hash.
//! Sizes are bounded: `--max-file-size` per file (a larger file is left out, with a
//! warning) and `--max-total-size` in all (a capture over it is refused, nothing written).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use crate::facts::{self, Facts, ScanOptions};
use crate::host::Host;
use crate::modules::{limits, memory, services};
use crate::names;

use super::capture_keep::{self, KeepContext};

/// Where a capture keeps what it knows about itself.
pub const MANIFEST_PATH: &str = "/var/lib/lltune/capture/manifest.json";

/// Default of `--max-file-size`: far above any configuration file, and above the largest file
/// a scan reads (/proc/interrupts, about 2 MB on a 256-CPU host).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 << 20;
/// Default of `--max-total-size`: the bytes of all files together, before compression.
pub const DEFAULT_MAX_TOTAL_SIZE: u64 = 256 << 20;

/// What to capture.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// Also what a tune run reads and edits (false: only what the scan reads).
    pub for_apply: bool,
    pub max_file_size: u64,
    pub max_total_size: u64,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions { for_apply: true, max_file_size: DEFAULT_MAX_FILE_SIZE, max_total_size: DEFAULT_MAX_TOTAL_SIZE }
    }
}

/// What a capture holds, for the summary line.
#[derive(Debug, Default)]
pub struct CaptureSummary {
    pub files: usize,
    pub links: usize,
    pub dirs: usize,
    pub bytes: u64,
    /// Paths left out because they may hold secrets (however they were reached).
    pub skipped: Vec<String>,
    /// Files left out for their size, with the size.
    pub too_large: Vec<(String, u64)>,
    /// Configuration files stored with only the lines lltune reads, with how many other
    /// lines were left out (`capture_keep`).
    pub filtered: Vec<(String, usize)>,
    /// Change modules whose plan failed while recording what they read (the capture is
    /// still written; a tune run on it may then miss a file, and says which).
    pub plan_notes: Vec<String>,
}

/// Paths that must never leave the host, whatever asks for them.
pub fn is_secret(target: &str) -> bool {
    let t = target.trim_end_matches('/');
    let name = t.rsplit('/').next().unwrap_or("");
    t.starts_with("/etc/shadow")
        || t.starts_with("/etc/gshadow")
        || t.starts_with("/etc/ssh/")
        || t.starts_with("/root/")
        || t.starts_with("/home/")
        || t.starts_with("/etc/pki/")
        || t.starts_with("/etc/ssl/private")
        || t.starts_with("/etc/grub.d/")
        || t == "/etc/security/opasswd"
        || (t.starts_with("/boot/") && name == "user.cfg")
        || t == "/proc/kcore"
        || (is_process_path(t)
            && matches!(
                name,
                "environ" | "cmdline" | "mem" | "maps" | "smaps" | "auxv" | "fd" | "cwd" | "root" | "exe"
            ))
        || name.ends_with(".key")
        || name.ends_with(".pem")
        || ((name.contains("secret") || name.contains("password")) && !is_unit_name(t, name))
}

/// A systemd unit or link named after one in a unit folder (`systemd-ask-password-wall.path`):
/// the name describes a service, not what the file holds (of a unit file, only its
/// `[Install]` section is kept: `capture_keep`).
fn is_unit_name(t: &str, name: &str) -> bool {
    let units = [".service", ".socket", ".path", ".timer", ".target", ".mount", ".swap", ".slice", ".scope"];
    services::UNIT_DIRS.iter().any(|d| t.starts_with(&format!("{d}/")))
        && units.iter().any(|u| name.ends_with(u) || name.ends_with(&format!("{u}.wants")))
}

/// `/proc/<pid>/...`, `/proc/self/...`, `/proc/<pid>/task/<tid>/...`.
fn is_process_path(t: &str) -> bool {
    let mut comps = t.split('/').skip(1);
    comps.next() == Some("proc")
        && comps.next().is_some_and(|c| c == "self" || c == "thread-self" || c.chars().all(|d| d.is_ascii_digit()))
}

/// One step of resolving a target path: links met on the way, and the final real path.
#[derive(Debug, Default)]
struct Resolved {
    links: Vec<(String, String)>,
    path: String,
}

/// Resolves `target` under `root` component by component, keeping every symbolic link met
/// (as target-relative paths) and never leaving `root`.
fn resolve(root: &Path, target: &str) -> Option<Resolved> {
    let mut out = Resolved::default();
    let mut done: Vec<String> = Vec::new();
    let mut todo: Vec<String> = target.split('/').filter(|c| !c.is_empty()).map(str::to_string).rev().collect();
    let mut hops = 0;
    while let Some(comp) = todo.pop() {
        match comp.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(comp);
        let cur = format!("/{}", done.join("/"));
        let real = root.join(cur.trim_start_matches('/'));
        let Ok(meta) = fs::symlink_metadata(&real) else { return None };
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let link = fs::read_link(&real).ok()?;
            out.links.push((cur.clone(), link.to_string_lossy().into_owned()));
            done.pop();
            if link.is_absolute() {
                done.clear();
            }
            for c in link.components().rev() {
                match c {
                    Component::Normal(s) => todo.push(s.to_string_lossy().into_owned()),
                    Component::ParentDir => todo.push("..".into()),
                    _ => {}
                }
            }
        }
    }
    out.path = format!("/{}", done.join("/"));
    Some(out)
}

/// What a tune run reads or edits besides what the scan reads, as patterns: a component `*`
/// (or `*.conf`, one star) matches the names of one folder (not those starting with `.`).
/// Every match that is a regular file is taken whole, every match that is a link is taken as
/// a link; a link's destination is taken only when it matches a pattern too.
pub fn apply_patterns() -> Vec<String> {
    let mut p: Vec<String> = [
        // The distribution (lltune_irq's irqbalance file, the kernel_args layout).
        "/etc/os-release",
        "/usr/lib/os-release",
        // Boot configuration (lltune_kernel_args, src/modules/boot.rs).
        "/etc/default/grub",
        "/etc/kernel/cmdline",
        "/boot/loader/entries/*.conf",
        "/boot/grub2/grub.cfg",
        "/boot/grub/grub.cfg",
        "/boot/grub2/grubenv",
        "/boot/grub/grubenv",
        "/boot/efi/EFI/*/grub.cfg",
        "/boot/efi/EFI/*/grubenv",
        // lltune_sysctl.
        "/etc/sysctl.conf",
        // lltune_cpu's CPUAffinity drop-in and what it overrides.
        "/etc/systemd/system.conf",
        "/etc/systemd/system.conf.d/*.conf",
        // lltune_memory's swap: fstab, zram.
        memory::FSTAB,
        "/etc/systemd/zram-generator.conf",
        "/usr/lib/systemd/zram-generator.conf",
        // lltune_irq.
        crate::facts::services::IRQBALANCE_RHEL,
        crate::facts::services::IRQBALANCE_DEBIAN,
        // tuned (services facts).
        "/etc/tuned/active_profile",
        "/etc/tuned/profile_mode",
        // The profiles installed (their names only: capture_keep keeps them empty).
        "/etc/tuned/profiles/*/tuned.conf",
        "/etc/tuned/*/tuned.conf",
        "/usr/lib/tuned/profiles/*/tuned.conf",
        "/usr/lib/tuned/*/tuned.conf",
        // lltune_limits.
        limits::LIMITS_CONF,
        limits::VENDOR_LIMITS_CONF,
        // Persistence: state.d and lltune's own files (not /var/lib/lltune/backups).
        "/etc/lltune/*",
        "/etc/lltune/*/*",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    p.extend(facts::sysctl::SYSCTL_DIRS.iter().map(|d| format!("{d}/*.conf")));
    p.extend([limits::LIMITS_D, limits::VENDOR_LIMITS_D].iter().map(|d| format!("{d}/*.conf")));
    // lltune_services (and lltune_memory's swap units): unit files, alias and mask links,
    // `.wants/` `.requires/` links and `.d/` drop-ins, in every folder systemd reads.
    for d in services::UNIT_DIRS {
        p.push(format!("{d}/*"));
        p.push(format!("{d}/*/*"));
    }
    p
}

/// One pattern component against one name.
fn component_matches(pat: &str, name: &str) -> bool {
    match pat.split_once('*') {
        None => pat == name,
        Some((a, b)) => {
            !name.starts_with('.') && name.len() >= a.len() + b.len() && name.starts_with(a) && name.ends_with(b)
        }
    }
}

/// True when the canonical target path `path` matches one of `patterns`.
fn matches_any(patterns: &[String], path: &str) -> bool {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    patterns.iter().any(|p| {
        let pc: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
        pc.len() == comps.len() && pc.iter().zip(&comps).all(|(p, n)| component_matches(p, n))
    })
}

/// Paths a capture never takes, though they hold no secret: the journals of earlier runs
/// (copies of files as they were, which belong to the host), and the capture's own files,
/// which are written afresh.
fn is_excluded(t: &str) -> bool {
    t.starts_with("/var/lib/lltune/backups/") || t.starts_with("/var/lib/lltune/capture/")
}

/// The entries a capture writes: canonical target paths (no link on the way).
#[derive(Debug, Default)]
struct Selection {
    files: BTreeSet<String>,
    dirs: BTreeSet<String>,
    links: BTreeMap<String, String>,
    skipped: BTreeSet<String>,
}

impl Selection {
    /// A file, folder or link the recording host saw: resolved inside `root` with every link
    /// met kept as a link. `kind`: the target was read as a file, listed as a folder, or
    /// read as a link itself (its folder is resolved, the link kept as it is).
    fn add_recorded(&mut self, root: &Path, target: &str, kind: Kind) {
        if is_secret(target) {
            self.skipped.insert(target.to_string());
            return;
        }
        if is_excluded(target) {
            return;
        }
        let (parent, name) = target.rsplit_once('/').unwrap_or(("", target));
        let Some(r) = resolve(root, if kind == Kind::Link { parent } else { target }) else { return };
        self.links.extend(r.links);
        if kind == Kind::Link {
            let at = format!("{}/{}", r.path.trim_end_matches('/'), name);
            if let Ok(t) = fs::read_link(root.join(at.trim_start_matches('/'))) {
                self.links.insert(at, t.to_string_lossy().into_owned());
            }
            return;
        }
        // Checked again where the links led: a link named like a unit may lead to /etc/shadow.
        if is_secret(&r.path) {
            self.skipped.insert(format!("{} (reached from {target})", r.path));
            return;
        }
        if is_excluded(&r.path) {
            return;
        }
        let real = root.join(r.path.trim_start_matches('/'));
        let Ok(meta) = fs::symlink_metadata(&real) else { return };
        if meta.is_dir() {
            // A listed folder: keep its links and subfolders (empty unless read), so that the
            // same listing on the capture finds the same names. Its plain files come along
            // only when read.
            if kind == Kind::Dir {
                for e in fs::read_dir(&real).into_iter().flatten().flatten() {
                    let at = format!("{}/{}", r.path.trim_end_matches('/'), e.file_name().to_string_lossy());
                    let Ok(ft) = e.file_type() else { continue };
                    if is_secret(&at) || is_excluded(&at) {
                        continue;
                    }
                    if ft.is_symlink() {
                        if let Ok(t) = fs::read_link(e.path()) {
                            self.links.insert(at, t.to_string_lossy().into_owned());
                        }
                    } else if ft.is_dir() {
                        self.dirs.insert(at);
                    }
                }
            }
            self.dirs.insert(r.path);
        } else if meta.is_file() {
            self.files.insert(r.path);
        }
        // Devices, FIFOs, sockets (a mask's /dev/null on `/`): never read.
    }

    /// Every match of the apply patterns: files whole, links as links.
    fn add_patterns(&mut self, root: &Path, patterns: &[String]) {
        for pattern in patterns {
            for target in expand(root, pattern) {
                self.add_config(root, &target, patterns);
            }
        }
    }

    /// One configuration path: a link is kept as a link, and its destination is taken only
    /// when it matches a pattern as well (`multi-user.target.wants/x.service` → the unit
    /// file; never /etc/shadow, never anything outside the list).
    fn add_config(&mut self, root: &Path, target: &str, patterns: &[String]) {
        if is_secret(target) {
            self.skipped.insert(target.to_string());
            return;
        }
        let (parent, name) = target.rsplit_once('/').unwrap_or(("", target));
        let Some(r) = resolve(root, parent) else { return };
        let at = format!("{}/{}", r.path.trim_end_matches('/'), name);
        let real = root.join(at.trim_start_matches('/'));
        let Ok(meta) = fs::symlink_metadata(&real) else { return };
        self.links.extend(r.links);
        if meta.file_type().is_symlink() {
            let Ok(to) = fs::read_link(&real) else { return };
            self.links.insert(at.clone(), to.to_string_lossy().into_owned());
            if let Some(dest) = resolve(root, &at) {
                if matches_any(patterns, &dest.path) {
                    if is_secret(&dest.path) {
                        self.skipped.insert(format!("{} (reached from {at})", dest.path));
                    } else if fs::symlink_metadata(root.join(dest.path.trim_start_matches('/')))
                        .is_ok_and(|m| m.is_file())
                    {
                        self.links.extend(dest.links);
                        self.files.insert(dest.path);
                    }
                }
            }
        } else if meta.is_file() && matches_any(patterns, &at) {
            self.files.insert(at);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Link,
}

/// The target paths under `root` that `pattern` names: literal components as written
/// (links in them followed chroot-like), `*` components by listing the folder; a `*` that is
/// not the last component descends only into real folders, never through a link.
fn expand(root: &Path, pattern: &str) -> Vec<String> {
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    let mut found = vec![String::new()];
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = Vec::new();
        for prefix in &found {
            if !comp.contains('*') {
                next.push(format!("{prefix}/{comp}"));
                continue;
            }
            let Some(r) = resolve(root, if prefix.is_empty() { "/" } else { prefix }) else { continue };
            let dir = root.join(r.path.trim_start_matches('/'));
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            let mut names: Vec<(String, bool)> = rd
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                    component_matches(comp, &name).then_some((name, is_dir))
                })
                .collect();
            names.sort();
            for (name, is_dir) in names {
                if last || is_dir {
                    next.push(format!("{prefix}/{name}"));
                }
            }
        }
        found = next;
    }
    found
}

/// Reads a regular file under `root` (never through a link: the path is canonical), at most
/// `cap` bytes; `Err(size)` when it holds more.
fn read_capped(root: &Path, target: &str, cap: u64) -> Option<std::result::Result<Vec<u8>, u64>> {
    let real = root.join(target.trim_start_matches('/'));
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&real)
        .ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut data = Vec::new();
    f.take(cap + 1).read_to_end(&mut data).ok()?;
    if data.len() as u64 > cap {
        return Some(Err(meta.len().max(data.len() as u64)));
    }
    Some(Ok(data))
}

/// Plans lltune's proposed config for this host with every change module, in check mode,
/// on the recording `host`: what they read (run-time files such as the governors a CPU
/// offers) is then recorded too. Nothing is written (check mode writes nothing); a module
/// that cannot plan here is named in the result.
fn record_apply_reads(host: &Host, facts: &Facts) -> (Vec<String>, Vec<String>) {
    use crate::config::to_args;
    let opts = crate::config::generate::GenOptions {
        plan: crate::analysis::plan::PlanOptions::default(),
        source: "capture".into(),
        generated_at: String::new(),
    };
    // With the boot configuration: kernel arguments are planned only with this flag.
    let text =
        crate::config::generate::generate(facts, &opts).replace("allow_grub_edit: false", "allow_grub_edit: true");
    let mut args = match to_args::from_text(&text) {
        Ok(a) => a,
        Err(issues) => return (vec![format!("proposed config: {} issue(s); no module planned", issues.len())], vec![]),
    };
    to_args::fit_to_host(&mut args, facts, host);
    // The sysctls the proposed config sets: lltune_sysctl reads their lines in every file.
    let sysctls: Vec<String> = args
        .modules
        .get(names::SYSCTL)
        .and_then(|m| m.get("settings"))
        .and_then(Value::as_object)
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default();
    let meta = crate::protocol::Meta { check_mode: true, diff: true, ..Default::default() };
    let mut notes = Vec::new();
    for (module, module_args) in args.in_order() {
        let mut m = module_args.as_object().cloned().unwrap_or_default();
        if module == names::SYSCTL {
            // As `lltune apply` runs it: the settings alone.
            m = Map::from_iter(m.remove("settings").map(|s| ("settings".to_string(), s)));
        }
        m.insert("backup_id".into(), Value::String("lltune-capture".into()));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::modules::run_by_name(module, host, &meta, m)
        }));
        match r {
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => notes.push(format!("{module}: {e:#}")),
            Ok(None) => notes.push(format!("{module}: unknown module")),
            Err(_) => notes.push(format!("{module}: panicked")),
        }
    }
    (notes, sysctls)
}

/// Scans `root` with a recording host and writes the capture to `out`.
pub fn capture(root: &Path, out: &Path, opts: &CaptureOptions) -> Result<CaptureSummary> {
    let host = Host::recording(root).with_context(|| format!("--root {}", root.display()))?;
    let root = host.root().to_path_buf();
    let root = root.as_path();
    let (facts, _warnings) = facts::collect(&host, ScanOptions { detail: true });
    let mut summary = CaptureSummary::default();
    let mut sysctls: Vec<String> = facts::sysctl::KEYS.iter().map(|k| k.to_string()).collect();
    if opts.for_apply {
        let (notes, proposed) = record_apply_reads(&host, &facts);
        summary.plan_notes = notes;
        sysctls.extend(proposed);
    }
    let rec = host.recorded();

    let mut sel = Selection::default();
    for f in &rec.files {
        sel.add_recorded(root, f, Kind::File);
    }
    for l in &rec.links {
        sel.add_recorded(root, l, Kind::Link);
    }
    for d in &rec.dirs {
        sel.add_recorded(root, d, Kind::Dir);
    }
    if opts.for_apply {
        sel.add_patterns(root, &apply_patterns());
    }
    summary.skipped = sel.skipped.iter().cloned().collect();

    // Read everything first, so that a capture over the total size writes nothing at all.
    let mut data: Vec<(String, Vec<u8>)> = Vec::new();
    let mut total: u64 = 0;
    for f in &sel.files {
        match read_capped(root, f, opts.max_file_size) {
            None => {}
            Some(Err(size)) => summary.too_large.push((f.clone(), size)),
            Some(Ok(bytes)) => data.push((f.clone(), bytes)),
        }
    }
    // Of each configuration file, only what lltune reads.
    let ctx = KeepContext::of(data.iter().map(|(p, b)| (p.as_str(), b.as_slice())), &sysctls);
    for (f, bytes) in &mut data {
        if let Some((kept, dropped)) = capture_keep::keep(f, bytes, &ctx) {
            *bytes = kept;
            summary.filtered.push((f.clone(), dropped));
        }
        total += bytes.len() as u64;
    }
    // What the ioctls answered (nothing on a tree), and the capture's own manifest.
    let mut extra: Vec<(String, Vec<u8>)> =
        facts::nic::capture_files(&facts.nics).into_iter().map(|(p, c)| (p, c.into_bytes())).collect();
    total += extra.iter().map(|(_, c)| c.len() as u64).sum::<u64>();
    if total > opts.max_total_size {
        data.sort_by_key(|(_, b)| std::cmp::Reverse(b.len()));
        let largest: Vec<String> = data.iter().take(5).map(|(p, b)| format!("{p} ({} bytes)", b.len())).collect();
        bail!(
            "the capture would hold {total} bytes, over --max-total-size {} (largest files: {}); nothing written: raise --max-total-size or lower --max-file-size",
            opts.max_total_size,
            largest.join(", ")
        );
    }

    let file = fs::File::create(out).with_context(|| format!("-o {}: cannot create", out.display()))?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut written_dirs: BTreeSet<String> = BTreeSet::new();
    let add_dir = |tar: &mut tar::Builder<_>, dir: &str, written: &mut BTreeSet<String>| -> Result<()> {
        let mut acc = String::new();
        for comp in dir.split('/').filter(|c| !c.is_empty()) {
            acc.push('/');
            acc.push_str(comp);
            if written.insert(acc.clone()) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_mtime(0);
                tar.append_data(&mut h, format!("{}/", acc.trim_start_matches('/')), std::io::empty())?;
            }
        }
        Ok(())
    };
    let add_file =
        |tar: &mut tar::Builder<_>, path: &str, bytes: &[u8], written: &mut BTreeSet<String>| -> Result<()> {
            if let Some((parent, _)) = path.rsplit_once('/') {
                add_dir(tar, parent, written)?;
            }
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(bytes.len() as u64);
            h.set_mtime(0);
            tar.append_data(&mut h, path.trim_start_matches('/'), bytes)?;
            Ok(())
        };
    for d in &sel.dirs {
        add_dir(&mut tar, d, &mut written_dirs)?;
        summary.dirs += 1;
    }
    for (f, bytes) in &data {
        add_file(&mut tar, f, bytes, &mut written_dirs)?;
        summary.files += 1;
        summary.bytes += bytes.len() as u64;
    }
    for (at, to) in &sel.links {
        if sel.files.contains(at) || sel.dirs.contains(at) {
            continue;
        }
        if let Some((parent, _)) = at.rsplit_once('/') {
            add_dir(&mut tar, parent, &mut written_dirs)?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_link(&mut h, at.trim_start_matches('/'), to)?;
        summary.links += 1;
    }
    let manifest = serde_json::json!({
        "lltune_version": env!("CARGO_PKG_VERSION"),
        "schema_version": facts::SCHEMA_VERSION,
        "hostname": facts.host.hostname,
        "kernel_release": facts.host.kernel_release,
        // What the captured files are (the running kernel's, or a tree's copied again):
        // a fact about the data, so `kernel()`, not `can_act()`.
        "captured_from_live_host": host.system().kernel() == crate::host::system::Kernel::Running,
        "for_apply": opts.for_apply,
        "files": summary.files,
        "links": summary.links,
        "left_out": summary.skipped.len() + summary.too_large.len(),
        "filtered": summary.filtered.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        "kept": ctx.to_json(),
    });
    extra.push((MANIFEST_PATH.to_string(), (serde_json::to_string_pretty(&manifest)? + "\n").into_bytes()));
    for (path, contents) in &extra {
        add_file(&mut tar, path, contents, &mut written_dirs)?;
        summary.files += 1;
        summary.bytes += contents.len() as u64;
    }
    let gz = tar.into_inner().context("writing the capture")?;
    let mut file = gz.finish().context("writing the capture")?;
    file.flush()?;
    file.sync_all()?;
    Ok(summary)
}

/// Unpacks a capture into `dest`, an empty folder, within `archive::LIMITS` (for tests and
/// tools; `--root X.tar.gz` goes through `cli::open_root`).
pub fn unpack(archive: &Path, dest: &Path) -> Result<PathBuf> {
    super::archive::unpack(archive, dest, &super::archive::LIMITS)?;
    Ok(dest.to_path_buf())
}

#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Host root to capture (`/` for this host).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// The .tar.gz to write.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Only the files a scan reads: enough for `lltune scan`, not for `lltune apply --root`.
    #[arg(long = "scan-only")]
    pub scan_only: bool,
    /// Largest file taken (bytes, or with K, M, G): a larger one is left out, with a warning.
    #[arg(long = "max-file-size", value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
    pub max_file_size: u64,
    /// Most bytes taken in all, before compression: a capture over it is refused.
    #[arg(long = "max-total-size", value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    pub max_total_size: u64,
}

/// `4096`, `512K`, `16M`, `1G` (powers of 1024; `KiB`, `MB` and lowercase accepted).
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("expected a size such as 1048576, 512K, 16M or 1G, got {text:?}")),
    };
    let n: u64 = num.parse().map_err(|_| format!("expected a size such as 1048576, 512K, 16M or 1G, got {text:?}"))?;
    match n.checked_mul(1u64 << shift) {
        Some(0) => Err("must be more than 0".into()),
        Some(v) => Ok(v),
        None => Err(format!("{text:?} is too large")),
    }
}

pub fn run(a: CaptureArgs) -> Result<ExitCode> {
    let opts =
        CaptureOptions { for_apply: !a.scan_only, max_file_size: a.max_file_size, max_total_size: a.max_total_size };
    let s = capture(&a.root, &a.output, &opts)?;
    let size = fs::metadata(&a.output).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "lltune: captured {} files, {} links, {} folders ({} bytes, {} compressed) into {}{}",
        s.files,
        s.links,
        s.dirs,
        s.bytes,
        size,
        a.output.display(),
        if opts.for_apply { "" } else { " (scan only)" }
    );
    for p in &s.skipped {
        eprintln!("lltune: warning: left out {p}: may hold secrets");
    }
    for (p, size) in &s.too_large {
        eprintln!("lltune: warning: left out {p}: {size} bytes or more, over --max-file-size {}", opts.max_file_size);
    }
    if !s.filtered.is_empty() {
        let lines: usize = s.filtered.iter().map(|(_, n)| n).sum();
        eprintln!(
            "lltune: note: {} configuration files stored with only the lines lltune reads ({lines} other lines left out; {MANIFEST_PATH} lists the files)",
            s.filtered.len()
        );
    }
    for n in &s.plan_notes {
        eprintln!("lltune: note: planning the proposed config to record what apply reads: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_refused() {
        for p in [
            "/etc/shadow",
            "/proc/1/environ",
            "/proc/1/cmdline",
            "/proc/self/environ",
            "/proc/12/task/13/cmdline",
            "/etc/ssh/ssh_host_rsa_key",
            "/root/.bash_history",
            "/etc/x/server.key",
        ] {
            assert!(is_secret(p), "{p}");
        }
        for p in ["/proc/cmdline", "/proc/1/comm", "/sys/class/net/eth0/mtu", "/etc/security/limits.conf"] {
            assert!(!is_secret(p), "{p}");
        }
        // GRUB's password file and scripts, pam's old passwords.
        for p in
            ["/boot/grub2/user.cfg", "/boot/efi/EFI/redhat/user.cfg", "/etc/grub.d/40_custom", "/etc/security/opasswd"]
        {
            assert!(is_secret(p), "{p}");
        }
        // A unit named after passwords is a unit; a file so named elsewhere is refused.
        assert!(!is_secret("/usr/lib/systemd/system/systemd-ask-password-wall.path"));
        assert!(!is_secret("/etc/systemd/system/sysinit.target.wants/systemd-ask-password-console.path"));
        assert!(is_secret("/etc/systemd/system/db.service.d/password.conf"));
        assert!(is_secret("/etc/lltune/password.txt"));
    }

    #[test]
    fn sizes_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("16M"), Ok(16 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        for bad in ["", "M", "1.5M", "-1", "12T", "0"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn patterns_match_one_component_per_star() {
        let p = apply_patterns();
        for yes in [
            "/etc/default/grub",
            "/boot/loader/entries/a-5.14.conf",
            "/boot/efi/EFI/redhat/grub.cfg",
            "/etc/sysctl.d/99-sysctl.conf",
            "/usr/lib/sysctl.d/50-default.conf",
            "/etc/security/limits.d/20-nproc.conf",
            "/etc/systemd/system/multi-user.target.wants/tuned.service",
            "/usr/lib/systemd/system/tuned.service",
            "/etc/lltune/state.d/lltune_irq.json",
        ] {
            assert!(matches_any(&p, yes), "{yes}");
        }
        for no in [
            "/etc/shadow",
            "/etc/passwd",
            "/boot/grub2/user.cfg",
            "/boot/vmlinuz-5.14",
            "/boot/efi/EFI/redhat/shimx64.efi",
            "/etc/sysctl.d/.99-x.conf.lltune-1",
            "/etc/sysctl.d/README.sysctl",
            "/var/lib/lltune/backups/x/journal.json",
            "/usr/lib/systemd/system/a/b/c",
        ] {
            assert!(!matches_any(&p, no), "{no}");
        }
    }

    /// A link in a unit folder is kept as a link; where it leads is read only when that is on
    /// the list (a unit file), never /etc/shadow or any other file, and never outside root.
    #[test]
    fn config_links_stay_links_and_are_followed_only_onto_the_list() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("etc/systemd/system/multi-user.target.wants")).unwrap();
        fs::create_dir_all(r.join("usr/lib/systemd/system")).unwrap();
        fs::write(r.join("usr/lib/systemd/system/a.service"), "[Unit]\n").unwrap();
        fs::write(r.join("etc/shadow"), "root:$6$x\n").unwrap();
        fs::write(r.join("etc/passwd"), "root:x:0:0\n").unwrap();
        let sys = r.join("etc/systemd/system");
        symlink("/usr/lib/systemd/system/a.service", sys.join("multi-user.target.wants/a.service")).unwrap();
        symlink("../../../../etc/shadow", sys.join("up.service")).unwrap();
        symlink("/etc/shadow", sys.join("abs.service")).unwrap();
        symlink("/etc/passwd", sys.join("pw.service")).unwrap();
        symlink("/dev/null", sys.join("masked.service")).unwrap();
        let mut sel = Selection::default();
        sel.add_patterns(r, &apply_patterns());
        assert_eq!(sel.files.iter().collect::<Vec<_>>(), ["/usr/lib/systemd/system/a.service"]);
        assert_eq!(sel.links["/etc/systemd/system/up.service"], "../../../../etc/shadow");
        assert_eq!(sel.links["/etc/systemd/system/abs.service"], "/etc/shadow");
        assert_eq!(sel.links["/etc/systemd/system/masked.service"], "/dev/null");
        assert_eq!(sel.links.len(), 5);
        // A file the scan read through such a link is refused where the link leads.
        sel.add_recorded(r, "/etc/systemd/system/abs.service", Kind::File);
        assert!(!sel.files.contains("/etc/shadow"));
        assert!(sel.skipped.iter().any(|s| s.starts_with("/etc/shadow (reached from")), "{:?}", sel.skipped);
    }

    #[test]
    fn resolve_keeps_links_and_stays_under_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("sys/devices/virtual/net/lo")).unwrap();
        fs::write(r.join("sys/devices/virtual/net/lo/mtu"), "65536\n").unwrap();
        fs::create_dir_all(r.join("sys/class/net")).unwrap();
        std::os::unix::fs::symlink("../../devices/virtual/net/lo", r.join("sys/class/net/lo")).unwrap();
        std::os::unix::fs::symlink("/../../sys", r.join("abs")).unwrap();
        let res = resolve(r, "/sys/class/net/lo/mtu").unwrap();
        assert_eq!(res.path, "/sys/devices/virtual/net/lo/mtu");
        assert_eq!(res.links, vec![("/sys/class/net/lo".to_string(), "../../devices/virtual/net/lo".to_string())]);
        // ".." above the root stops at the root, as it does for the kernel at "/".
        assert_eq!(resolve(r, "/abs/devices").unwrap().path, "/sys/devices");
        assert!(resolve(r, "/sys/nope").is_none());
    }
}
