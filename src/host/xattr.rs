//! Extended attributes through the file descriptor (flistxattr/fgetxattr/fsetxattr), and
//! their hex form in the journal.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;

fn cstr(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::other("xattr name holds a NUL byte"))
}

/// Every attribute of an open file. A filesystem without xattrs has none.
pub fn read_all(f: &fs::File) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let fd = f.as_raw_fd();
    let mut out = BTreeMap::new();
    // SAFETY: a null buffer of size 0 asks for the size only.
    let n = unsafe { libc::flistxattr(fd, std::ptr::null_mut(), 0) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTSUP) => Ok(out),
            _ => Err(e),
        };
    }
    let mut names = vec![0u8; n as usize];
    // SAFETY: `names` has room for `names.len()` bytes.
    let n = unsafe { libc::flistxattr(fd, names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    names.truncate(n as usize);
    for raw in names.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let name = String::from_utf8_lossy(raw).into_owned();
        let c = cstr(&name)?;
        // SAFETY: size query as above.
        let len = unsafe { libc::fgetxattr(fd, c.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut value = vec![0u8; len as usize];
        // SAFETY: `value` has room for `value.len()` bytes.
        let len = unsafe { libc::fgetxattr(fd, c.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        value.truncate(len as usize);
        out.insert(name, value);
    }
    Ok(out)
}

/// Sets every attribute on an open file.
pub fn write_all(f: &fs::File, attrs: &BTreeMap<String, Vec<u8>>) -> io::Result<()> {
    for (name, value) in attrs {
        let c = cstr(name)?;
        // SAFETY: pointer and length describe `value`.
        let r = unsafe { libc::fsetxattr(f.as_raw_fd(), c.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("setting extended attribute {name}: {e}")));
        }
    }
    Ok(())
}

/// The journal stores values as hex text (SELinux labels end in a NUL byte).
pub mod hex {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        let hex: BTreeMap<&String, String> =
            m.iter().map(|(k, v)| (k, v.iter().map(|b| format!("{b:02x}")).collect())).collect();
        serde::Serialize::serialize(&hex, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let hex = BTreeMap::<String, String>::deserialize(d)?;
        let mut out = BTreeMap::new();
        for (k, v) in hex {
            if v.len() % 2 != 0 || v.len() > 1 << 16 {
                return Err(serde::de::Error::custom(format!("xattr {k}: not a hex value")));
            }
            let bytes: Result<Vec<u8>, _> =
                (0..v.len()).step_by(2).map(|i| u8::from_str_radix(&v[i..i + 2], 16)).collect();
            out.insert(k.clone(), bytes.map_err(|_| serde::de::Error::custom(format!("xattr {k}: not a hex value")))?);
        }
        Ok(out)
    }
}
