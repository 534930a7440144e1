//! lltune_latency: cyclictest on the isolated and the housekeeping CPUs, per-CPU
//! min/avg/max/percentiles and histogram (`crate::latency`). Read-only: `changed` is always
//! false. In check mode the options, the CPUs and cyclictest are checked and the arguments
//! reported, but nothing is measured unless `run_in_check_mode` is true: a measurement
//! changes nothing on the host, yet it takes `duration` seconds of real-time threads on every
//! measured CPU, which a preview should not do by surprise. `skipped_reason` says why
//! nothing was measured (the Ansible `skipped` key is not used: the task did run).

use anyhow::Result;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::host::Host;
use crate::latency::{self, CpuSelection, Request, Settings};
use crate::protocol::{Failure, Meta, Outcome, kind, lenient_bool};

pub const MODULE: &str = crate::names::LATENCY;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// `all` (default), `isolated`, `housekeeping`, or a CPU list.
    #[serde(default, deserialize_with = "cpu_text")]
    pub cpus: Option<String>,
    /// Seconds, 1 to 3600.
    #[serde(default = "duration", deserialize_with = "lenient_u64")]
    pub duration: u64,
    /// Microseconds between wake-ups.
    #[serde(default = "interval", deserialize_with = "lenient_u64")]
    pub interval: u64,
    /// SCHED_FIFO priority, 1 to 99.
    #[serde(default = "priority", deserialize_with = "lenient_u64")]
    pub priority: u64,
    /// Histogram length in µs.
    #[serde(default = "histogram_us", deserialize_with = "lenient_u64")]
    pub histogram_us: u64,
    /// Absolute path of cyclictest; default: the PATH.
    #[serde(default)]
    pub cyclictest: Option<String>,
    /// Measure in check mode too.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub run_in_check_mode: bool,
}

fn duration() -> u64 {
    latency::DEFAULT_DURATION_S
}
fn interval() -> u64 {
    latency::DEFAULT_INTERVAL_US
}
fn priority() -> u64 {
    latency::DEFAULT_PRIORITY as u64
}
fn histogram_us() -> u64 {
    latency::DEFAULT_HISTOGRAM_US
}

/// A whole number, or the string templating turns one into (`"60"`).
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => {
            n.as_u64().ok_or_else(|| serde::de::Error::custom(format!("expected a whole number, got {n}")))
        }
        Value::String(s) => s.trim().parse().map_err(|_| {
            serde::de::Error::custom(format!("expected a whole number, got {:?}", crate::protocol::cap_text(&s)))
        }),
        other => Err(serde::de::Error::custom(format!("expected a whole number, got {}", kind(&other)))),
    }
}

/// The CPU selection: text, one CPU number (YAML reads `cpus: 3` as a number), or a list of
/// CPU numbers.
fn cpu_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) if n.is_u64() => Ok(Some(n.to_string())),
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_u64().map(|c| c.to_string()))
            .collect::<Option<Vec<_>>>()
            .map(|v| Some(v.join(",")))
            .ok_or_else(|| serde::de::Error::custom("expected a list of CPU numbers")),
        other => Err(serde::de::Error::custom(format!(
            "expected a CPU list (like 0-3,8) or all, isolated, housekeeping; got {}",
            kind(&other)
        ))),
    }
}

pub fn run(host: &Host, meta: &Meta, p: Params) -> Result<Outcome> {
    // A priority past u32 is out of range as it was written, not as a clamped number.
    let priority = u32::try_from(p.priority).map_err(|_| {
        Failure::new(format!(
            "option priority: {} is out of range: 1 to {} (SCHED_FIFO)",
            p.priority,
            latency::MAX_PRIORITY
        ))
    })?;
    let settings = Settings { duration_s: p.duration, interval_us: p.interval, priority, histogram_us: p.histogram_us };
    let cpus = CpuSelection::parse(p.cpus.as_deref().unwrap_or("all"))
        .map_err(|e| Failure::new(format!("option cpus: {e}")))?;
    let req = Request {
        settings,
        cpus,
        cyclictest: p.cyclictest,
        run: !meta.check_mode || p.run_in_check_mode,
        skip_reason: "check mode: nothing measured (set run_in_check_mode: true to measure in check mode too)".into(),
        measured_at: crate::backup_id::now_utc(),
    };
    let (doc, warnings) = latency::run_request(host, &req).map_err(|e| match e.option {
        Some(o) => Failure::new(format!("option {o}: {}", e.msg)),
        None => Failure::new(e.msg),
    })?;
    let mut outcome = Outcome::new(false);
    if let Value::Object(m) = serde_json::to_value(&doc)? {
        for (k, v) in m {
            outcome = outcome.field(&k, v);
        }
    }
    outcome.warnings = warnings;
    Ok(outcome)
}
