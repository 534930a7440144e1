//! The audit trail's sink: a `tracing` subscriber that sends each event of a run that changed
//! the host to the host's syslog, as Ansible's own modules log their invocation, and (for
//! `lltune -v`) the same line to standard error.
//!
//! The engine emits the events (`engine::log_changes` for what a run changed, and for
//! `lltune install-cli`; `engine::log_revert` for what a failed run or transaction put back);
//! this file only formats and sends them. One line per event: the message, then its fields as `name="value"` (Rust string
//! escapes, so no value can start a second line). Three fields steer and are not printed:
//! `module` becomes the syslog identifier, `root` decides where the line goes (the host's
//! `/dev/log` only when it is `/`: a captured tree's run is not this machine's business) and
//! `facility` is Ansible's `_ansible_syslog_facility` (default `LOG_USER`).
//!
//! The datagram is RFC 3164 as glibc's syslog(3) writes it, `<PRI>Mmm dd hh:mm:ss
//! ident[pid]: message` (the time in UTC), which journald and rsyslog read from `/dev/log`.
//! `LLTUNE_SYSLOG_SOCKET` names another datagram socket to send to, whatever the root: for
//! tests, which own that socket (this machine may have no journald). Sending never fails a
//! run: a host without a syslog socket loses the line, as it would lose Ansible's.

use std::fmt::{self, Write as _};
use std::os::unix::net::UnixDatagram;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Where the lines go instead of `/dev/log` (tests).
pub const SOCKET_ENV: &str = "LLTUNE_SYSLOG_SOCKET";
/// The host's syslog socket (journald's, or rsyslog's).
pub const DEV_LOG: &str = "/dev/log";
/// The longest line sent (rsyslog's default maximum message size).
pub const MAX_LINE: usize = 8192;

struct Trail {
    stderr: bool,
}

/// Sends every event of the run through this subscriber, for the rest of the process; the
/// first call wins (the CLI's, with `-v`; else the engine's when a run first changes
/// something). `stderr`: print each line on standard error too (`lltune -v`).
pub fn install(stderr: bool) {
    let _ = tracing::subscriber::set_global_default(Trail { stderr });
}

/// An event's fields: the steering ones apart, the rest as text.
#[derive(Default)]
struct Line {
    module: String,
    root: String,
    facility: String,
    text: String,
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "module" => self.module = value.to_string(),
            "root" => self.root = value.to_string(),
            "facility" => self.facility = value.to_string(),
            name => {
                let _ = write!(self.text, " {name}={value:?}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            self.record_str(field, &format!("{value:?}"));
        }
    }
}

/// `LOG_*` facility names as Ansible's `syslog_facility` takes them; anything else is
/// `LOG_USER`, Ansible's default.
fn facility_code(name: &str) -> u8 {
    match name.trim_start_matches("LOG_") {
        "KERN" => 0,
        "DAEMON" => 3,
        "AUTH" => 4,
        "SYSLOG" => 5,
        "AUTHPRIV" => 10,
        "LOCAL0" => 16,
        "LOCAL1" => 17,
        "LOCAL2" => 18,
        "LOCAL3" => 19,
        "LOCAL4" => 20,
        "LOCAL5" => 21,
        "LOCAL6" => 22,
        "LOCAL7" => 23,
        _ => 1,
    }
}

/// The RFC 3164 header's time, `Dec  7 04:20:01`, from a `YYYYMMDDTHHMMSSZ` stamp.
fn syslog_time(stamp: &str) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let n = |r: std::ops::Range<usize>| stamp.get(r).and_then(|s| s.parse::<usize>().ok()).unwrap_or(0);
    let month = MONTHS.get(n(4..6).wrapping_sub(1)).unwrap_or(&"Jan");
    format!("{month} {:>2} {:02}:{:02}:{:02}", n(6..8), n(9..11), n(11..13), n(13..15))
}

/// The datagram for one line: `<PRI>time ident[pid]: text`, severity info, cut at `MAX_LINE`.
pub fn datagram(facility: &str, ident: &str, text: &str) -> String {
    let pri = u16::from(facility_code(facility)) * 8 + 6;
    let stamp = syslog_time(&crate::backup_id::now_utc());
    let mut d = format!("<{pri}>{stamp} {ident}[{}]: {text}", std::process::id());
    if d.len() > MAX_LINE {
        let mut end = MAX_LINE;
        while !d.is_char_boundary(end) {
            end -= 1;
        }
        d.truncate(end);
    }
    d
}

impl Subscriber for Trail {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("lltune")
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = Line::default();
        event.record(&mut line);
        let ident = if line.module.is_empty() { "lltune" } else { line.module.as_str() };
        if self.stderr {
            eprintln!("{ident}: {}", line.text);
        }
        let path = match std::env::var_os(SOCKET_ENV) {
            Some(p) => std::path::PathBuf::from(p),
            None if line.root == "/" => DEV_LOG.into(),
            None => return,
        };
        if let Ok(sock) = UnixDatagram::unbound() {
            let _ = sock.send_to(datagram(&line.facility, ident, &line.text).as_bytes(), path);
        }
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_are_rfc_3164_as_glibc_writes_them() {
        assert_eq!(syslog_time("20261207T042001Z"), "Dec  7 04:20:01");
        assert_eq!(syslog_time("20260115T235959Z"), "Jan 15 23:59:59");
        let d = datagram("LOG_LOCAL3", "lltune_sysctl", "changed x=\"1\"");
        let head = format!("<{}>", 19 * 8 + 6);
        assert!(d.starts_with(&head), "{d}");
        assert!(d.ends_with(&format!(" lltune_sysctl[{}]: changed x=\"1\"", std::process::id())), "{d}");
        assert!(datagram("", "m", "x").starts_with("<14>"), "LOG_USER, info");
        assert!(datagram("LOG_NOPE", "m", "x").starts_with("<14>"));
        let long = datagram("", "m", &"é".repeat(MAX_LINE));
        assert!(long.len() <= MAX_LINE && long.len() > MAX_LINE - 4, "{}", long.len());
    }
}
