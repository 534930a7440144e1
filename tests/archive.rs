//! `lltune scan --root X.tar.gz` on hostile archives, built here with the tar crate: bombs,
//! deep and long paths, names and links that would lead out of the temporary folder, entry
//! types a capture never holds; and the temporary folder gone after errors, SIGINT, SIGTERM
//! and (by the next run) SIGKILL.
//! See: issue 17 ("`lltune scan --root X.tar.gz` has no bounds").

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lltune::cli::archive::{self, LIMITS, Limits};

use crate::support;

/// `lltune scan --root <archive>` with its temporary folders in `tmp`.
fn scan(archive: &Path, tmp: &Path) -> std::process::Output {
    Command::new(support::bin("lltune"))
        .args(["scan", "--format", "json", "--root"])
        .arg(archive)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The entries of `dir` (none means nothing was left behind).
fn left_in(dir: &Path) -> Vec<String> {
    fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

fn one_line_error(o: &std::process::Output) -> String {
    assert_eq!(o.status.code(), Some(1), "stdout {}", String::from_utf8_lossy(&o.stdout));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

/// A header of `kind` for `path` (GNU format: long names go in `././@LongLink` entries).
fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    h
}

/// A .tar.gz built by `build` on a tar::Builder.
fn targz(path: &Path, build: impl FnOnce(&mut tar::Builder<flate2::write::GzEncoder<fs::File>>)) {
    let gz = flate2::write::GzEncoder::new(fs::File::create(path).unwrap(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    build(&mut b);
    b.into_inner().unwrap().finish().unwrap();
}

/// The bytes of a tar archive of raw 512-byte blocks, gzipped (for headers the tar crate's
/// builder would refuse to write, such as `..` in a name).
fn raw_targz(path: &Path, blocks: &[Vec<u8>]) {
    let mut gz = flate2::write::GzEncoder::new(fs::File::create(path).unwrap(), flate2::Compression::fast());
    for b in blocks {
        gz.write_all(b).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap();
}

/// One raw header block: `name` written into the name field as it is (no checks).
fn raw_header(name: &[u8], kind: tar::EntryType, size: u64, link: &[u8]) -> Vec<u8> {
    let mut h = header(kind, size);
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// A gzip stream of a tar archive holding one file of `size` zero bytes, made without
/// compressing `size` bytes: one deflate block of 1 MiB of zeros (non-final, byte-aligned by
/// a sync flush) is repeated; every block starts with a literal 0 and copies at distance 1,
/// so it is valid at any point of the stream. The CRC is wrong: a reader that gets to the
/// end has already unpacked `size` bytes, which is what the test is about.
fn zip_bomb(path: &Path, size: u64) -> u64 {
    use flate2::{Compress, Compression, FlushCompress};
    let deflate = |data: &[u8]| {
        let mut c = Compress::new(Compression::best(), false);
        let mut out = Vec::with_capacity(data.len() + 1024);
        c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
        assert_eq!(c.total_in() as usize, data.len());
        out
    };
    const MIB: usize = 1 << 20;
    let mut h = header(tar::EntryType::Regular, size);
    h.set_path("zeros").unwrap();
    h.set_cksum();
    let mut f = fs::File::create(path).unwrap();
    f.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]).unwrap();
    f.write_all(&deflate(h.as_bytes())).unwrap();
    let block = deflate(&vec![0u8; MIB]);
    for _ in 0..size / MIB as u64 {
        f.write_all(&block).unwrap();
    }
    // A final empty stored block, then a (wrong) CRC and the size.
    f.write_all(&[1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    f.metadata().unwrap().len()
}

/// See: issue 17. A 2 MB archive that would unpack 2 GB is refused at its header: nothing
/// is written, the message names the archive and the limit, and no temporary folder stays.
#[test]
fn archive_bomb_is_refused_before_it_is_written() {
    let d = tempfile::tempdir().unwrap();
    let tmp = d.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    let bomb = d.path().join("bomb.tar.gz");
    let compressed = zip_bomb(&bomb, 2 << 30);
    assert!(compressed < 4 << 20, "the bomb is small: {compressed} bytes");
    let t = Instant::now();
    let o = scan(&bomb, &tmp);
    let err = one_line_error(&o);
    assert!(
        err.contains(&format!("--root {}", bomb.display()))
            && err.contains(&format!("{} bytes unpacked", LIMITS.max_bytes)),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_eq!(left_in(&tmp), Vec::<String>::new());

    // Headers that under-declare cannot be made with tar (the contents are as long as the
    // header says), but many files that add up are refused at the one that crosses the
    // limit, and the byte budget of the stream holds whatever the headers say.
    let limits = Limits { max_bytes: 3 << 20, ..LIMITS };
    let many = d.path().join("many.tar.gz");
    targz(&many, |b| {
        for i in 0..8 {
            let mut h = header(tar::EntryType::Regular, 1 << 20);
            b.append_data(&mut h, format!("f{i}"), std::io::repeat(0).take(1 << 20)).unwrap();
        }
    });
    let dest = tempfile::tempdir().unwrap();
    let e = format!("{:#}", archive::unpack(&many, dest.path(), &limits).unwrap_err());
    assert!(e.contains("more than 3145728 bytes unpacked"), "{e}");
    let written: u64 = fs::read_dir(dest.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(written <= 3 << 20, "{written} bytes written");
}

/// See: issue 17 ("a small archive with a very deep path runs for minutes"). Long and deep
/// names are refused at once; an archive at the depth limit with many entries under the
/// same deep folders unpacks in time linear in its entries.
#[test]
fn deep_and_long_paths_are_bounded() {
    let d = tempfile::tempdir().unwrap();
    let tmp = d.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    // 100,000 components (200 kB of name in a GNU long name entry).
    let deep = d.path().join("deep.tar.gz");
    targz(&deep, |b| {
        let name = "a/".repeat(100_000) + "f";
        let mut h = header(tar::EntryType::Regular, 1);
        b.append_data(&mut h, &name, &b"x"[..]).unwrap();
    });
    let t = Instant::now();
    let err = one_line_error(&scan(&deep, &tmp));
    assert!(err.contains(&format!("more than {} bytes in a path", LIMITS.max_path_bytes)), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // 2,000 components in 4,000 bytes: under the length limit, over the depth limit.
    let deep = d.path().join("deep2.tar.gz");
    targz(&deep, |b| {
        let mut h = header(tar::EntryType::Regular, 1);
        b.append_data(&mut h, "a/".repeat(1_999) + "f", &b"x"[..]).unwrap();
    });
    let err = one_line_error(&scan(&deep, &tmp));
    assert!(err.contains(&format!("more than {} components in a path", LIMITS.max_depth)), "{err}");
    assert_eq!(left_in(&tmp), Vec::<String>::new());

    // Entries at the depth limit: the time per entry does not grow with the entries before.
    let dir = (0..LIMITS.max_depth - 1).map(|i| format!("d{i:02}{}", "x".repeat(55))).collect::<Vec<_>>().join("/");
    assert!(dir.len() < LIMITS.max_path_bytes - 16);
    let timed = |n: usize| {
        let a = d.path().join(format!("wide{n}.tar.gz"));
        targz(&a, |b| {
            for i in 0..n {
                let mut h = header(tar::EntryType::Regular, 1);
                b.append_data(&mut h, format!("{dir}/f{i}"), &b"x"[..]).unwrap();
            }
        });
        let dest = tempfile::tempdir().unwrap();
        let t = Instant::now();
        archive::unpack(&a, dest.path(), &LIMITS).unwrap();
        t.elapsed()
    };
    let (small, large) = (timed(2_000), timed(8_000));
    eprintln!("2,000 entries at depth 64: {small:?}; 8,000: {large:?}");
    // Linear: 4 times the entries in well under 16 times the time (quadratic work would be 16).
    assert!(large < small * 10 + Duration::from_millis(500), "{small:?} then {large:?}");
    // The entry limit counts the folders made on the way.
    let limits = Limits { max_entries: 100, ..LIMITS };
    let a = d.path().join("count.tar.gz");
    targz(&a, |b| {
        for i in 0..60 {
            let mut h = header(tar::EntryType::Regular, 1);
            b.append_data(&mut h, format!("x{i}/y/f"), &b"x"[..]).unwrap();
        }
    });
    let dest = tempfile::tempdir().unwrap();
    let e = format!("{:#}", archive::unpack(&a, dest.path(), &limits).unwrap_err());
    assert!(e.contains("more than 100 entries"), "{e}");
}

/// Names and links that would write outside the folder, and entry types a capture never
/// holds: each refused, naming the entry; nothing is written outside.
#[test]
fn names_and_links_never_lead_out_of_the_folder() {
    let d = tempfile::tempdir().unwrap();
    let outside = d.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let outside_s = outside.to_str().unwrap().as_bytes();
    let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
        ("dotdot", vec![raw_header(b"../../escaped", tar::EntryType::Regular, 0, b"")], "a path with `..`"),
        ("dotdot-inner", vec![raw_header(b"a/../../escaped", tar::EntryType::Regular, 0, b"")], "a path with `..`"),
        (
            "absolute",
            vec![raw_header(&[outside_s, b"/abs"].concat(), tar::EntryType::Regular, 0, b"")],
            "an absolute path",
        ),
        (
            "through-link",
            vec![
                raw_header(b"etc", tar::EntryType::Symlink, 0, outside_s),
                raw_header(b"etc/passwd", tar::EntryType::Regular, 0, b""),
            ],
            "etc/passwd: goes through a link or file stored before it",
        ),
        (
            "through-link-dir",
            vec![
                raw_header(b"l", tar::EntryType::Symlink, 0, b"../outside"),
                raw_header(b"l/sub/", tar::EntryType::Directory, 0, b""),
            ],
            "goes through a link or file stored before it",
        ),
        (
            "link-then-file",
            vec![
                raw_header(b"x", tar::EntryType::Symlink, 0, outside_s),
                raw_header(b"x", tar::EntryType::Regular, 0, b""),
            ],
            "x: stored twice",
        ),
        ("hard-link", vec![raw_header(b"h", tar::EntryType::Link, 0, b"../../etc/passwd")], "h: a hard link"),
        ("fifo", vec![raw_header(b"p", tar::EntryType::Fifo, 0, b"")], "p: a FIFO"),
        ("device", vec![raw_header(b"sda", tar::EntryType::Block, 0, b"")], "sda: a device"),
    ];
    let tmp = d.path().join("tmp");
    fs::create_dir(&tmp).unwrap();
    for (name, blocks, want) in cases {
        let a = d.path().join(format!("{name}.tar.gz"));
        raw_targz(&a, &blocks);
        let err = one_line_error(&scan(&a, &tmp));
        assert!(err.contains(&format!("--root {}: ", a.display())) && err.contains(want), "{name}: {err}");
        assert_eq!(left_in(&outside), Vec::<String>::new(), "{name}");
        assert!(!d.path().join("escaped").exists() && !d.path().parent().unwrap().join("escaped").exists());
        assert_eq!(left_in(&tmp), Vec::<String>::new(), "{name}");
    }
    // A link alone is kept as written (captures hold `→ /dev/null` and absolute unit
    // links); lltune resolves it inside the tree, so reading through it stays inside.
    let a = d.path().join("links.tar.gz");
    targz(&a, |b| {
        for (at, to) in [("etc/x.service", outside.to_str().unwrap()), ("up", "../../../../../outside")] {
            let mut h = header(tar::EntryType::Symlink, 0);
            b.append_link(&mut h, at, to).unwrap();
        }
    });
    let dest = tempfile::tempdir().unwrap();
    archive::unpack(&a, dest.path(), &LIMITS).unwrap();
    assert_eq!(fs::read_link(dest.path().join("etc/x.service")).unwrap(), outside);
    let host = lltune::host::Host::new(dest.path()).unwrap();
    fs::write(outside.join("secret"), "x").unwrap();
    assert!(host.read_opt("/etc/x.service/secret").map(|o| o.is_none()).unwrap_or(true));
    assert!(host.read_opt("/up/secret").map(|o| o.is_none()).unwrap_or(true));
}

/// The temporary folder of a run ended by SIGINT or SIGTERM is removed by the run (the
/// process still ends by the signal); one a SIGKILL left is removed by the next run.
#[test]
fn killed_runs_leave_no_temporary_folder() {
    let d = tempfile::tempdir().unwrap();
    // Many small files: unpacking takes long enough to be interrupted.
    let slow = d.path().join("slow.tar.gz");
    targz(&slow, |b| {
        for i in 0..60_000 {
            let mut h = header(tar::EntryType::Regular, 1);
            b.append_data(&mut h, format!("proc/{}/{i}", i % 500), &b"x"[..]).unwrap();
        }
    });
    let start = |tmp: &Path| -> std::process::Child {
        Command::new(support::bin("lltune"))
            .args(["scan", "--root"])
            .arg(&slow)
            .env("TMPDIR", tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // Waits until the run has made its folder and started to fill it.
    let wait_for_folder = |tmp: &Path| -> PathBuf {
        let t = Instant::now();
        loop {
            if let Some(p) = fs::read_dir(tmp).unwrap().flatten().map(|e| e.path()).next() {
                if fs::read_dir(&p).map(|mut r| r.next().is_some()).unwrap_or(false) {
                    return p;
                }
            }
            assert!(t.elapsed() < Duration::from_secs(30), "no temporary folder appeared");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let tmp = d.path().join(format!("tmp{sig}"));
        fs::create_dir(&tmp).unwrap();
        let mut child = start(&tmp);
        let folder = wait_for_folder(&tmp);
        assert!(folder.file_name().unwrap().to_str().unwrap().starts_with(&format!("lltune-root-{}-", child.id())));
        // SAFETY: a signal to our own child, whose id we hold until `wait`.
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(sig), "{status:?}");
        assert_eq!(left_in(&tmp), Vec::<String>::new(), "signal {sig}");
    }
    // SIGKILL: the folder stays; the next run removes it (its process is gone and nobody
    // holds its lock), and leaves alone a folder whose process still lives.
    let tmp = d.path().join("tmpkill");
    fs::create_dir(&tmp).unwrap();
    let mut child = start(&tmp);
    let folder = wait_for_folder(&tmp);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(folder.exists());
    let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let alive = tmp.join(format!("lltune-root-{}-0", other.id()));
    fs::create_dir(&alive).unwrap();
    let small = d.path().join("small.tar.gz");
    targz(&small, |b| {
        let mut h = header(tar::EntryType::Regular, 2);
        b.append_data(&mut h, "etc/hostname", &b"h\n"[..]).unwrap();
    });
    let o = scan(&small, &tmp);
    other.kill().unwrap();
    other.wait().unwrap();
    assert!(!folder.exists(), "the killed run's folder is removed by the next run: {:?}", left_in(&tmp));
    assert!(alive.exists(), "a live process's folder stays");
    let _ = o;
}
