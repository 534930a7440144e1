//! Backup ids and the one clock format lltune stamps things with.
//!
//! A backup id names one run's journal bundle (`/var/lib/lltune/backups/<id>/`); several
//! modules of one play share it. The default is `YYYYMMDDTHHMMSSZ-<pid>` (UTC, ISO 8601
//! basic): it sorts by time and is unique per process. The same stamp alone is what
//! `metadata.generated_at` and latency reports carry. Low in the layers so that the engine,
//! the config generator and the CLI all take it from here.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::echo::cap_text;

/// `20261122T101500Z-<pid>`: sorts by time, unique per process.
pub fn new_id() -> String {
    format!("{}-{}", utc_stamp(SystemTime::now()), std::process::id())
}

/// Now, as an ISO 8601 basic UTC stamp (`20261122T101500Z`): the head of every default id.
pub fn now_utc() -> String {
    utc_stamp(SystemTime::now())
}

/// A UTC timestamp `YYYYMMDDTHHMMSSZ` without a date library (civil-from-days, H. Hinnant).
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// A backup id names a folder: letters, digits, `.`, `_`, `-`, not starting with a dot.
pub fn validate(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a valid backup id (letters, digits, '.', '_', '-'; not starting with '.')",
            cap_text(id)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamp_is_civil_time() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_795_774_500); // 2026-11-27T10:15:00Z
        assert_eq!(utc_stamp(t), "20261127T101500Z");
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        // Leap day, and the last second of a century year that is a leap year.
        assert_eq!(utc_stamp(UNIX_EPOCH + std::time::Duration::from_secs(951_782_400)), "20000229T000000Z");
        assert_eq!(utc_stamp(UNIX_EPOCH + std::time::Duration::from_secs(978_307_199)), "20001231T235959Z");
        let id = new_id();
        assert!(id.ends_with(&format!("-{}", std::process::id())), "{id}");
        assert!(validate(&id).is_ok(), "{id}");
        assert_eq!(id.split('-').next().unwrap().len(), "20261127T101500Z".len());
    }

    #[test]
    fn backup_ids_are_folder_names() {
        assert!(validate("20261122T101500Z-42").is_ok());
        for bad in ["", "..", "a/b", ".hidden", "a b", "x;y"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert!(validate(&"a".repeat(129)).is_err());
    }
}
