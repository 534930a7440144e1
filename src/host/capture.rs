//! Capture recording: a recording host remembers every target path it read, listed or
//! resolved as a link, so that `lltune capture` copies exactly what a scan looked at.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{Host, HostError};

/// What a recording host saw: the target paths read, listed or resolved as links.
#[derive(Debug, Default, Clone)]
pub struct Recording {
    pub files: BTreeSet<String>,
    pub dirs: BTreeSet<String>,
    pub links: BTreeSet<String>,
}

impl Host {
    /// Like `new`, but remembers every target path read, for `lltune capture`.
    pub fn recording(root: impl Into<PathBuf>) -> Result<Host, HostError> {
        let mut host = Host::new(root)?;
        host.recording = Some(Mutex::new(Recording::default()));
        Ok(host)
    }

    /// What this host recorded so far (empty when not recording).
    pub fn recorded(&self) -> Recording {
        match &self.recording {
            Some(m) => m.lock().map(|r| r.clone()).unwrap_or_default(),
            None => Recording::default(),
        }
    }

    pub(super) fn note(&self, kind: fn(&mut Recording) -> &mut BTreeSet<String>, path: &str) {
        if let Some(m) = &self.recording {
            if let Ok(mut r) = m.lock() {
                kind(&mut r).insert(path.to_string());
            }
        }
    }
}
