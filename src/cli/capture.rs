//! `lltune capture`: a .tar.gz of exactly the files a scan reads, so a server can be analysed
//! offline with `lltune scan --root DIR` (the idea of hwloc-gather-topology and sosreport).
//!
//! The scan runs on a recording `Host`; every file it read, folder it listed and link it
//! followed is copied with its sysfs structure: a path that goes through a symbolic link
//! (`/sys/class/net/eth0` → `../../devices/...`) is stored as that link plus the file at the
//! link's destination, so the captured tree resolves like the live one. procfs and sysfs
//! report a size of 0, so each file is read to its end and stored with the size read.
//! What the NIC ioctls answered is stored as JSON beside (see `facts::nic`).
//! Secrets stay out: the scan never reads them, and `is_secret` refuses them regardless.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::facts::{self, ScanOptions};
use crate::host::Host;

/// Where a capture keeps what it knows about itself.
pub const MANIFEST_PATH: &str = "/var/lib/lltune/capture/manifest.json";

/// What a capture holds, for the summary line.
#[derive(Debug, Default)]
pub struct CaptureSummary {
    pub files: usize,
    pub links: usize,
    pub dirs: usize,
    pub bytes: u64,
    pub skipped: Vec<String>,
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
        || t == "/proc/kcore"
        || (is_process_path(t)
            && matches!(
                name,
                "environ" | "cmdline" | "mem" | "maps" | "smaps" | "auxv" | "fd" | "cwd" | "root" | "exe"
            ))
        || name.ends_with(".key")
        || name.ends_with(".pem")
        || name.contains("secret")
        || name.contains("password")
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

/// Scans `host` with a recording host and writes the capture to `out`.
pub fn capture(root: &Path, out: &Path) -> Result<CaptureSummary> {
    let host = Host::recording(root).with_context(|| format!("--root {}", root.display()))?;
    let (facts, _warnings) = facts::collect(&host, ScanOptions { detail: true });
    let rec = host.recorded();

    let mut summary = CaptureSummary::default();
    let mut links: BTreeSet<(String, String)> = BTreeSet::new();
    let mut files: BTreeSet<String> = BTreeSet::new();
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    let paths = rec
        .files
        .iter()
        .map(|p| (p, false))
        .chain(rec.links.iter().map(|p| (p, true)))
        .chain(rec.dirs.iter().map(|p| (p, false)));
    for (target, is_link) in paths {
        if is_secret(target) {
            summary.skipped.push(target.clone());
            continue;
        }
        // A recorded link itself: resolve its parent, keep the link as is.
        let (parent, name) = target.rsplit_once('/').unwrap_or(("", target));
        let Some(r) = resolve(root, if is_link { parent } else { target }) else { continue };
        links.extend(r.links);
        if is_link {
            let at = format!("{}/{}", r.path.trim_end_matches('/'), name);
            if let Ok(t) = fs::read_link(root.join(at.trim_start_matches('/'))) {
                links.insert((at, t.to_string_lossy().into_owned()));
            }
        } else if root.join(r.path.trim_start_matches('/')).is_dir() {
            // A listed folder: keep its links and subfolders (empty unless read), so that
            // the same listing on the capture finds the same names. Its plain files come
            // along only when the scan read them.
            if rec.dirs.contains(target) {
                for e in fs::read_dir(root.join(r.path.trim_start_matches('/'))).into_iter().flatten().flatten() {
                    let at = format!("{}/{}", r.path.trim_end_matches('/'), e.file_name().to_string_lossy());
                    let Ok(ft) = e.file_type() else { continue };
                    if is_secret(&at) {
                        continue;
                    }
                    if ft.is_symlink() {
                        if let Ok(t) = fs::read_link(e.path()) {
                            links.insert((at, t.to_string_lossy().into_owned()));
                        }
                    } else if ft.is_dir() {
                        dirs.insert(at);
                    }
                }
            }
            dirs.insert(r.path);
        } else {
            files.insert(r.path);
        }
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
    for d in &dirs {
        add_dir(&mut tar, d, &mut written_dirs)?;
        summary.dirs += 1;
    }
    for f in &files {
        let Ok(data) = fs::read(root.join(f.trim_start_matches('/'))) else { continue };
        if let Some((parent, _)) = f.rsplit_once('/') {
            add_dir(&mut tar, parent, &mut written_dirs)?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        tar.append_data(&mut h, f.trim_start_matches('/'), data.as_slice())?;
        summary.files += 1;
        summary.bytes += data.len() as u64;
    }
    for (at, to) in &links {
        if files.contains(at) || dirs.contains(at) {
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
    // What the ioctls answered (nothing on a tree), and the capture's own manifest.
    let mut extra: Vec<(String, String)> = facts::nic::capture_files(&facts.nics);
    let manifest = serde_json::json!({
        "lltune_version": env!("CARGO_PKG_VERSION"),
        "schema_version": facts::SCHEMA_VERSION,
        "hostname": facts.host.hostname,
        "kernel_release": facts.host.kernel_release,
        "captured_from_live_host": host.is_live(),
        "files": summary.files,
        "links": summary.links,
    });
    extra.push((MANIFEST_PATH.to_string(), serde_json::to_string_pretty(&manifest)? + "\n"));
    for (path, contents) in extra {
        if let Some((parent, _)) = path.rsplit_once('/') {
            add_dir(&mut tar, parent, &mut written_dirs)?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(contents.len() as u64);
        h.set_mtime(0);
        tar.append_data(&mut h, path.trim_start_matches('/'), contents.as_bytes())?;
        summary.files += 1;
        summary.bytes += contents.len() as u64;
    }
    let gz = tar.into_inner().context("writing the capture")?;
    let mut file = gz.finish().context("writing the capture")?;
    file.flush()?;
    file.sync_all()?;
    Ok(summary)
}

/// Unpacks a capture into `dest` (for `--root` on a .tar.gz and for tests).
pub fn unpack(archive: &Path, dest: &Path) -> Result<PathBuf> {
    let f = fs::File::open(archive).with_context(|| format!("{}: cannot open", archive.display()))?;
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    ar.set_preserve_permissions(false);
    ar.unpack(dest).with_context(|| format!("{}: cannot unpack into {}", archive.display(), dest.display()))?;
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
}

pub fn run(a: CaptureArgs) -> Result<ExitCode> {
    let s = capture(&a.root, &a.output)?;
    eprintln!(
        "lltune: captured {} files, {} links, {} folders ({} bytes) into {}",
        s.files,
        s.links,
        s.dirs,
        s.bytes,
        a.output.display()
    );
    for p in &s.skipped {
        eprintln!("lltune: warning: left out {p}: may hold secrets");
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
