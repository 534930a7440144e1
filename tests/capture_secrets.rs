//! `lltune capture` keeps no secret: a host whose configuration files hold secrets in every
//! form their syntax allows (see `plant`) is captured; no secret's bytes are anywhere in the
//! archive, the capture still scans to the host's facts, and apply on it writes what it writes
//! on the host less the lines the capture leaves out.
//! See: issue 17 ("`lltune capture` keeps secrets").

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;

use lltune::cli::capture_keep::{KeepContext, keep};

use crate::support::{self, Node, Rng, copy_fixture, tree_snapshot};

fn lltune(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(support::bin("lltune")).args(args).output().expect("run lltune");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every secret below is a unique string starting with this prefix.
const PREFIX: &str = "LLTS-";

fn append(root: &Path, rel: &str, text: &[u8]) {
    let p = root.join(rel);
    let mut old = fs::read(&p).unwrap_or_default();
    if !old.is_empty() && !old.ends_with(b"\n") {
        old.push(b'\n');
    }
    old.extend_from_slice(text);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, old).unwrap();
}

fn prepend(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    let old = fs::read(&p).unwrap_or_default();
    fs::write(&p, [text.as_bytes(), &old].concat()).unwrap();
}

/// The files `plant` writes secrets into.
const PLANTED: &[&str] = &[
    "etc/systemd/system/db.service",
    "etc/systemd/system/db.service.d/override.conf",
    "usr/lib/systemd/system/vendor-agent.service",
    "run/systemd/system/runtime.service",
    "etc/systemd/system.conf",
    "etc/systemd/system.conf.d/10-env.conf",
    "etc/systemd/zram-generator.conf",
    "etc/fstab",
    "etc/default/grub",
    "boot/grub2/grub.cfg",
    "boot/efi/EFI/rocky/grub.cfg",
    "boot/grub2/grubenv",
    "etc/sysctl.d/50-app.conf",
    "etc/security/limits.d/50-app.conf",
    "etc/sysconfig/irqbalance",
    "etc/os-release",
];

/// Secrets in every syntax of every configuration file a capture takes.
fn plant(root: &Path) {
    // systemd units and drop-ins, in each unit folder: every key but `[Install]`'s links, in
    // every spelling systemd reads (spaces around `=`, continuations, comments inside them,
    // leading blanks, `;` comments, bytes that are not UTF-8).
    let unit = b"[Unit]\nDescription=db # LLTS-u1\n; LLTS-u2\n[Service]\nEnvironment=TOKEN=LLTS-u3\nEnvironment = \"PASS=LLTS-u4\"\n   Environment=A=1 \\\n  B=LLTS-u5 \\\n  C=LLTS-u6\nEnvironment=X=1 \\\n# comment LLTS-u7\n  Y=LLTS-u8\nSetCredential=db:LLTS-u9\nSetCredentialEncrypted=k: LLTS-u10\nLoadCredential=key:/etc/LLTS-u11\nExecStart=/opt/db/bin/db --password=LLTS-u12 -p LLTS-u13 --user=u\nExecStartPre=/bin/sh -c 'echo LLTS-u14'\nEnvironment=Z=\\\n[Install]\nWantedBy=LLTS-u15.target\n[Service]\nEnvironment=\xff\xfeLLTS-u16\n[Install]\nWantedBy=multi-user.target \\\n# LLTS-u17\n  graphical.target\nAlso=LLTS-u18.service\n";
    append(root, "etc/systemd/system/db.service", unit);
    append(
        root,
        "etc/systemd/system/db.service.d/override.conf",
        b"[Service]\nEnvironment=\"DB_PASSWORD=LLTS-d1\" \"OTHER=LLTS-d2\"\nExecStart=\nExecStart=/opt/db --token LLTS-d3\n",
    );
    append(
        root,
        "usr/lib/systemd/system/vendor-agent.service",
        b"[Service]\nEnvironment=API_KEY=LLTS-v1\n[Install]\nWantedBy=multi-user.target\n",
    );
    append(root, "run/systemd/system/runtime.service", b"[Service]\nLoadCredential=x:LLTS-r1\n");
    // systemd's manager: DefaultEnvironment= holds tokens too.
    append(root, "etc/systemd/system.conf", b"[Manager]\nDefaultEnvironment=TOKEN=LLTS-m1\n#CPUAffinity=LLTS-m2\n");
    append(
        root,
        "etc/systemd/system.conf.d/10-env.conf",
        b"[Manager]\nDefaultEnvironment=\"A=1\" \\\n  \"B=LLTS-m3\"\nCPUAffinity=0-3\n",
    );
    append(
        root,
        "etc/systemd/zram-generator.conf",
        b"[zram0]\nzram-size = ram / 2\nwriteback-device = /dev/LLTS-z1\n# LLTS-z2\n",
    );
    // fstab: credentials in options (CIFS), in a credentials file name, in a URL, with
    // octal escapes and tabs; the swap line stays.
    fs::write(
        root.join("etc/fstab"),
        "# LLTS-f1\n/dev/mapper/rl-root / xfs defaults 0 0\n//nas/share /mnt/s cifs username=u,password=LLTS-f2,domain=d 0 0\n//nas/s2 /mnt/s2 cifs credentials=/root/LLTS-f3 0 0\nhttps://user:LLTS-f4@dav.example/ /mnt/dav davfs user,noauto 0 0\n//nas/with\\040LLTS-f5 /mnt/a\\040b cifs pass=LLTS-f6 0 0\n//h/s\t/m\tcifs\tpassword=LLTS-f7\t0 0\nuser@host:/LLTS-f8 /mnt/x fuse.sshfs IdentityFile=/LLTS-f9 0 0\n/dev/mapper/rl-swap none swap defaults 0 0\n",
    )
    .unwrap();
    // /etc/default/grub: secrets beside, inside and after the assignments lltune reads, in
    // what sh reads as other statements, quotes over lines, here-documents, substitutions.
    prepend(
        root,
        "etc/default/grub",
        "# LLTS-g1\nGRUB_CMDLINE_LINUX=\"early\"; GRUB_PASSWORD=LLTS-g2\nGRUB_X=\"a\nGRUB_CMDLINE_LINUX_DEFAULT=LLTS-g3\n\"\npassword_pbkdf2 root grub.pbkdf2.sha512.10000.LLTS-g4\necho x; password_pbkdf2 root LLTS-g5\nGRUB_TIMEOUT=5 # LLTS-g6\ncat <<EOF\nGRUB_ENABLE_BLSCFG=LLTS-g7\nEOF\nGRUB_Y=\"$(echo \"; GRUB_CMDLINE_LINUX=LLTS-g8; \")\"\nGRUB_CMDLINE_LINUX_DEFAULT=x echo LLTS-g9\n",
    );
    // The last assignment wins for sh and for lltune's readers alike: a real one comes last
    // (lltune's line readers also take lines that sh reads as a quoted value or a here-document).
    append(root, "etc/default/grub", b"GRUB_SAVEDEFAULT=true  # LLTS-g10\nGRUB_CMDLINE_LINUX_DEFAULT=\"\"\n");
    // grub.cfg: password hashes at the start of a line, indented, after `;`, in a block.
    prepend(
        root,
        "boot/grub2/grub.cfg",
        "set superusers=\"root\"\npassword_pbkdf2 root grub.pbkdf2.sha512.10000.LLTS-c1\n  password admin LLTS-c2\nif true; then password_pbkdf2 x LLTS-c3; fi\n",
    );
    append(
        root,
        "boot/efi/EFI/rocky/grub.cfg",
        b"search --no-floppy --fs-uuid --set=dev x; password_pbkdf2 r LLTS-c4\nset prefix=($dev)/grub2\nexport $prefix\nconfigfile $prefix/grub.cfg\n",
    );
    // grubenv: a variable no BLS entry uses.
    let env = fs::read_to_string(root.join("boot/grub2/grubenv")).unwrap();
    let env = env.replacen("boot_success=1\n", "boot_success=1\nmenu_secret=LLTS-e1\n", 1);
    fs::write(root.join("boot/grub2/grubenv"), env).unwrap();
    // BLS entries: lines the scan and lltune_kernel_args do not read.
    for e in fs::read_dir(root.join("boot/loader/entries")).unwrap() {
        let rel = format!("boot/loader/entries/{}", e.unwrap().file_name().to_string_lossy());
        append(root, &rel, b"# LLTS-b1\ngrub_arg --unrestricted LLTS-b2\n");
    }
    // sysctl.d: comments of both kinds, lines that are not assignments of a sysctl name.
    append(
        root,
        "etc/sysctl.d/50-app.conf",
        b"# LLTS-s1\n; LLTS-s2\nnet.core.somaxconn = 4096\nthis is LLTS-s3\nkernel.x y = LLTS-s4\nkernel.core_pattern = |/opt/crash --api-key=LLTS-s5\n",
    );
    // limits.d: comments (after a line too) and lines pam_limits does not read.
    append(
        root,
        "etc/security/limits.d/50-app.conf",
        b"# LLTS-l1\n@trading - memlock unlimited   # LLTS-l2\npassword LLTS-l3\napp LLTS-l4 nofile 1\n",
    );
    // irqbalance's environment file: comments of both kinds, a continued comment, a
    // variable the scan does not read.
    prepend(
        root,
        "etc/sysconfig/irqbalance",
        "# LLTS-i1\n;IRQBALANCE_ARGS=--LLTS-i3\n#IRQBALANCE_BANNED_CPULIST=LLTS-i4\nIRQBALANCE_ONESHOT=LLTS-i5\n",
    );
    // os-release: variables nothing reads, comments, a second statement on a line.
    append(root, "etc/os-release", b"SUPPORT_URL=\"https://u:LLTS-o1@x\"\n# LLTS-o2\nVARIANT=x; TOKEN=LLTS-o3\n");
}

fn gunzip(archive: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(fs::File::open(archive).unwrap()), &mut out).unwrap();
    out
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every `LLTS-...` string in the files under `root`.
fn secrets_in(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, node) in tree_snapshot(root) {
        if let Node::File { bytes, .. } = node {
            let text = String::from_utf8_lossy(&bytes);
            for (i, _) in text.match_indices(PREFIX) {
                let s: String = text[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                out.insert(s);
            }
        }
    }
    out
}

fn scan(r: &Path) -> serde_json::Value {
    let (code, out, err) = lltune(&["scan", "--format", "json", "--detail", "--root", r.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn capture_keeps_no_secret_in_any_syntax_and_stays_a_host() {
    let host = crate::capture_apply::trading_host();
    let root = host.path();
    plant(root);
    let planted = secrets_in(root);
    assert!(planted.len() >= 60, "the corpus is planted: {planted:?}");

    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("host.tar.gz");
    let (code, _, err) = lltune(&["capture", "--root", root.to_str().unwrap(), "-o", archive.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("configuration files stored with only the lines lltune reads"), "{err}");
    // No secret's bytes anywhere in the archive (names, contents, link targets).
    let raw = gunzip(&archive);
    let left: Vec<&String> = planted.iter().filter(|s| find(&raw, s.as_bytes())).collect();
    assert!(left.is_empty(), "secrets in the archive: {left:?}");
    assert!(!find(&raw, PREFIX.as_bytes()));

    // The capture scans to the host's facts.
    let tree = work.path().join("tree");
    fs::create_dir(&tree).unwrap();
    lltune::cli::capture::unpack(&archive, &tree).unwrap();
    // Every file that held secrets was taken (with what lltune reads of it).
    for f in PLANTED {
        assert!(tree.join(f).is_file(), "{f} is not in the capture");
    }
    assert_eq!(scan(&tree), scan(root), "facts of the capture differ from the host's");
    // What lltune reads of them is there: the [Install] links, the swap line.
    let unit = fs::read_to_string(tree.join("etc/systemd/system/db.service")).unwrap_or_default();
    assert!(unit.contains("WantedBy=multi-user.target \\\n  graphical.target\n"), "{unit}");
    assert_eq!(lltune::modules::services::parse_install(&unit).wanted_by, ["multi-user.target", "graphical.target"]);
    let fstab = fs::read_to_string(tree.join("etc/fstab")).unwrap();
    assert_eq!(
        fstab.lines().filter(|l| !l.is_empty()).collect::<Vec<_>>(),
        ["/dev/mapper/rl-swap none swap defaults 0 0"]
    );

    // apply on a copy of the host and on the capture: the same paths change, and each file
    // written on the capture is the host's with the capture's lines left out.
    let cfg = work.path().join("config.yaml");
    let (code, out, err) = lltune(&["gen-config", "--root", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // memlock for a user: the host's vendor limits.d file, read after lltune's, sets `* -
    // memlock 64`, so lltune_limits refuses the proposed `*` line as not in effect (issue 17).
    let out = out.replace("user: \"*\"", "user: \"trader\"");
    fs::write(&cfg, out.replace("allow_grub_edit: false", "allow_grub_edit: true")).unwrap();
    let copy = copy_fixture(root);
    let mut runs = Vec::new();
    for r in [copy.path(), tree.as_path()] {
        let before = tree_snapshot(r);
        let (code, out, err) =
            lltune(&["apply", "-c", cfg.to_str().unwrap(), "--root", r.to_str().unwrap(), "--backup-id", "sec1"]);
        assert_eq!(code, 0, "apply on {}: {out}{err}", r.display());
        runs.push((before, tree_snapshot(r)));
    }
    let changed = |b: &BTreeMap<String, Node>, a: &BTreeMap<String, Node>| -> BTreeSet<String> {
        b.keys().chain(a.keys()).filter(|k| b.get(*k) != a.get(*k)).cloned().collect()
    };
    let (c1, c2) = (changed(&runs[0].0, &runs[0].1), changed(&runs[1].0, &runs[1].1));
    assert_eq!(c1, c2, "apply changed different paths on the host and on its capture");
    for p in ["etc/default/grub", "etc/fstab", "etc/sysconfig/irqbalance", "etc/sysctl.d/99-latency-tuner.conf"] {
        assert!(c1.contains(p), "apply did not change {p}: {c1:#?}");
    }
    let host_after = &runs[0].1;
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(tree.join("var/lib/lltune/capture/manifest.json")).unwrap()).unwrap();
    let ctx = KeepContext::from_json(&manifest["kept"]);
    for p in c1.iter().filter(|p| !p.starts_with("var/lib/lltune/backups/")) {
        match (host_after.get(p), runs[1].1.get(p)) {
            (Some(Node::File { bytes: h, .. }), Some(Node::File { bytes: c, .. })) => {
                // A file lltune writes whole is the same on both; one it edits keeps the
                // capture's lines only.
                let kept = keep(&format!("/{p}"), h, &ctx).map(|(b, _)| b).unwrap_or_else(|| h.clone());
                assert!(
                    c == h || *c == kept,
                    "{p}: the capture's file is neither the host's nor the host's with the capture's lines left out:\nhost:\n{}\ncapture:\n{}",
                    String::from_utf8_lossy(h),
                    String::from_utf8_lossy(c)
                );
            }
            (h, c) => assert_eq!(h, c, "{p}"),
        }
    }
}

/// The links `systemctl --root DIR enable db.service` makes: path → target.
fn systemctl_enable(root: &Path) -> BTreeMap<String, String> {
    let out =
        Command::new("systemctl").arg(format!("--root={}", root.display())).args(["enable", "db.service"]).output();
    let out = out.expect("run systemctl");
    assert!(out.status.success(), "systemctl enable: {}", String::from_utf8_lossy(&out.stderr));
    tree_snapshot(root)
        .into_iter()
        .filter_map(|(k, v)| match v {
            Node::Link(to) => Some((k, to.to_string_lossy().into_owned())),
            _ => None,
        })
        .collect()
}

/// Generated unit files, from every spelling systemd reads (blanks around `=`, continuations
/// with comment lines inside them, `;` comments, keys of other sections, a section header
/// swallowed by a continuation): `systemctl enable` (the real reader of `[Install]`) makes
/// the same links from a unit and from what the capture keeps of it, lltune's own reader
/// agrees, and no secret is kept.
#[test]
fn generated_units_enable_the_same_links_and_keep_no_secret() {
    if Command::new("systemctl").arg("--version").output().is_err() {
        support::skip_unless_ci("no systemctl to read [Install] sections");
        return;
    }
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let targets = ["multi-user.target", "graphical.target", "timers.target", "sockets.target"];
    let install_keys = ["WantedBy", "RequiredBy", "UpheldBy"];
    let mut secret = 0;
    let mut linked = 0;
    for case in 0..60 {
        let mut text = String::new();
        let mut m = || {
            secret += 1;
            format!("LLTS-{secret}")
        };
        for _ in 0..2 + rng.below(5) {
            let eq = rng.pick(&["=", " = ", "= ", " ="]);
            let lead = rng.pick(&["", "  ", "\t"]);
            let section = rng.pick(&["[Unit]", "[Service]", "[Install]", "[X-Vendor]"]);
            text.push_str(section);
            text.push('\n');
            for _ in 0..1 + rng.below(4) {
                let line = match rng.below(12) {
                    0 => format!("{lead}Environment{eq}TOKEN={}", m()),
                    1 => format!("{lead}Environment{eq}\"A=1\" \\\n  \"B={}\"", m()),
                    2 => format!("{lead}Environment{eq}X=1 \\\n# {}\n; {}\n  Y={}", m(), m(), m()),
                    3 => format!("{lead}ExecStart{eq}/opt/db --password={} -p {}", m(), m()),
                    4 => format!("{lead}SetCredential{eq}db:{}", m()),
                    5 => format!("{lead}LoadCredential{eq}k:/etc/{}", m()),
                    6 => format!("# {}\n; {}", m(), m()),
                    // A header swallowed by a continuation: the key after it stays in the
                    // section before (which may be [Install]).
                    7 => format!("Environment{eq}Z={} \\\n[Install]\nWantedBy=swallowed.target", m()),
                    8 | 9 => format!(
                        "{lead}{}{eq}{} \\\n# {}\n  {}",
                        rng.pick(&install_keys),
                        rng.pick(&targets),
                        m(),
                        rng.pick(&targets)
                    ),
                    10 => format!("{lead}{}{eq}{}", rng.pick(&install_keys), rng.pick(&targets)),
                    _ => format!("{lead}Alias{eq}db-{case}.service"),
                };
                text.push_str(&line);
                text.push('\n');
            }
        }
        let ctx = KeepContext::default();
        let kept = keep("/etc/systemd/system/db.service", text.as_bytes(), &ctx).map(|(b, _)| b).unwrap();
        let kept = String::from_utf8(kept).unwrap();
        assert!(!kept.contains(PREFIX), "a secret kept:\n{text}\n--- kept:\n{kept}");
        let mut links = Vec::new();
        for body in [&text, &kept] {
            let d = tempfile::tempdir().unwrap();
            fs::create_dir_all(d.path().join("etc/systemd/system")).unwrap();
            fs::write(d.path().join("etc/systemd/system/db.service"), body).unwrap();
            links.push(systemctl_enable(d.path()));
        }
        assert_eq!(links[0], links[1], "systemctl enables other links from the capture:\n{text}\n--- kept:\n{kept}");
        linked += links[0].len();
        // lltune_services reads the capture's [Install] as systemctl does.
        let install = lltune::modules::services::parse_install(&kept);
        let wants: BTreeSet<String> = links[0]
            .keys()
            .filter_map(|p| p.strip_suffix(".wants/db.service").and_then(|t| t.rsplit('/').next()).map(str::to_string))
            .collect();
        assert_eq!(install.wanted_by.iter().cloned().collect::<BTreeSet<_>>(), wants, "{kept}");
    }
    assert!(linked > 60, "the cases enable units: {linked} links");
}
