//! One group of a live interface's ethtool settings as JSON: what the change engine snapshots,
//! journals and puts back for `lltune_nic` (features, coalescing, rings, channels, pause).
//!
//! The JSON of a group is what `lltune capture` stores for it: the uapi struct with its field
//! names (`rx_pending`, `use_adaptive_rx_coalesce` as a boolean), and for features a mapping of
//! the kernel's feature names to their active state. Features that cannot be changed
//! (`[fixed]`) are left out of the snapshot: nothing can put them back, and nothing changes
//! them.
//!
//! A write takes a partial mapping (only the fields to change), starts from the device's
//! current struct, sets it, and reads it back: a value the driver rounds or a feature a
//! dependency holds off fails the write instead of being reported as done.

use anyhow::{Result, bail};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ethtool::{self, EthtoolError};

/// A group of ethtool settings, as `ethtool -k/-c/-g/-l/-a` show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Features,
    Coalesce,
    Rings,
    Channels,
    Pause,
}

impl Group {
    pub const ALL: [Group; 5] = [Group::Features, Group::Coalesce, Group::Rings, Group::Channels, Group::Pause];

    /// The group's key in a capture file and in the journal (`rings`).
    pub fn name(self) -> &'static str {
        match self {
            Group::Features => "features",
            Group::Coalesce => "coalesce",
            Group::Rings => "rings",
            Group::Channels => "channels",
            Group::Pause => "pause",
        }
    }

    /// The `ethtool` option that shows the group (`-g`).
    pub fn show_flag(self) -> &'static str {
        match self {
            Group::Features => "-k",
            Group::Coalesce => "-c",
            Group::Rings => "-g",
            Group::Channels => "-l",
            Group::Pause => "-a",
        }
    }

    /// Fields a set changes (the rest is read-only, such as `rx_max_pending`); `None` for
    /// features, where every (changeable) feature name is one.
    pub fn settable(self) -> Option<&'static [&'static str]> {
        match self {
            Group::Features => None,
            Group::Coalesce => Some(COALESCE_FIELDS),
            Group::Rings => Some(&["rx_pending", "rx_mini_pending", "rx_jumbo_pending", "tx_pending"]),
            Group::Channels => Some(&["rx_count", "tx_count", "other_count", "combined_count"]),
            Group::Pause => Some(&["autoneg", "rx_pause", "tx_pause"]),
        }
    }
}

impl std::fmt::Display for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Every field of `struct ethtool_coalesce` but `cmd`: all of them are set at once.
const COALESCE_FIELDS: &[&str] = &[
    "rx_coalesce_usecs",
    "rx_max_coalesced_frames",
    "rx_coalesce_usecs_irq",
    "rx_max_coalesced_frames_irq",
    "tx_coalesce_usecs",
    "tx_max_coalesced_frames",
    "tx_coalesce_usecs_irq",
    "tx_max_coalesced_frames_irq",
    "stats_block_coalesce_usecs",
    "use_adaptive_rx_coalesce",
    "use_adaptive_tx_coalesce",
    "pkt_rate_low",
    "rx_coalesce_usecs_low",
    "rx_max_coalesced_frames_low",
    "tx_coalesce_usecs_low",
    "tx_max_coalesced_frames_low",
    "pkt_rate_high",
    "rx_coalesce_usecs_high",
    "rx_max_coalesced_frames_high",
    "tx_coalesce_usecs_high",
    "tx_max_coalesced_frames_high",
    "rate_sample_interval",
];

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The group's current state from the kernel.
pub fn read(ifname: &str, group: Group) -> Result<Value, EthtoolError> {
    Ok(match group {
        Group::Features => {
            let all = ethtool::get_features(ifname)?;
            Value::Object(
                all.iter().filter(|f| !f.is_fixed()).map(|f| (f.name.clone(), Value::Bool(f.active))).collect(),
            )
        }
        Group::Coalesce => to_value(&ethtool::get_coalesce(ifname)?),
        Group::Rings => to_value(&ethtool::get_ringparam(ifname)?),
        Group::Channels => to_value(&ethtool::get_channels(ifname)?),
        Group::Pause => to_value(&ethtool::get_pauseparam(ifname)?),
    })
}

/// The fields of `want` that differ from `now` and that a set may change: what takes the
/// device from `now` to `want`. Fields `now` lacks are left out (a feature that became fixed).
pub fn changes(group: Group, now: &Value, want: &Value) -> Map<String, Value> {
    let (Some(now), Some(want)) = (now.as_object(), want.as_object()) else { return Map::new() };
    want.iter()
        .filter(|(k, _)| group.settable().is_none_or(|s| s.contains(&k.as_str())))
        .filter(|(k, v)| now.get(*k).is_some_and(|n| n != *v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Sets the fields of `changes` (uapi field names, or feature names), then reads the group
/// back and fails naming every field the device did not take.
pub fn write(ifname: &str, group: Group, changes: &Map<String, Value>) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    match group {
        Group::Features => {
            let all = ethtool::get_features(ifname)?;
            let mut set = Vec::new();
            for (name, v) in changes {
                let Some(f) = all.iter().find(|f| &f.name == name) else {
                    bail!("{ifname}: no feature {name}");
                };
                if f.is_fixed() {
                    bail!("{ifname}: feature {name} is fixed");
                }
                let Some(on) = v.as_bool() else { bail!("{ifname}: feature {name}: {v} is not a boolean") };
                set.push((f.index, on));
            }
            ethtool::set_features(ifname, &set)?;
        }
        Group::Coalesce => {
            let v = merged(ethtool::get_coalesce(ifname)?, group, changes)?;
            ethtool::set_coalesce(ifname, &v)?;
        }
        Group::Rings => {
            let v = merged(ethtool::get_ringparam(ifname)?, group, changes)?;
            ethtool::set_ringparam(ifname, &v)?;
        }
        Group::Channels => {
            let v = merged(ethtool::get_channels(ifname)?, group, changes)?;
            ethtool::set_channels(ifname, &v)?;
        }
        Group::Pause => {
            let v = merged(ethtool::get_pauseparam(ifname)?, group, changes)?;
            ethtool::set_pauseparam(ifname, &v)?;
        }
    }
    let now = read(ifname, group)?;
    let kept: Vec<String> = changes
        .iter()
        .filter(|(k, v)| now.get(k.as_str()) != Some(*v))
        .map(|(k, v)| format!("{k} {} (asked {v})", now.get(k.as_str()).unwrap_or(&Value::Null)))
        .collect();
    if !kept.is_empty() {
        bail!("{ifname}: the device kept {} {}", group, kept.join(", "));
    }
    Ok(())
}

/// The current struct with `changes` laid over it; a field that is not settable is refused.
fn merged<T: Serialize + DeserializeOwned>(current: T, group: Group, changes: &Map<String, Value>) -> Result<T> {
    let mut v = to_value(&current);
    let settable = group.settable().unwrap_or(&[]);
    for (k, x) in changes {
        if !settable.contains(&k.as_str()) {
            bail!("{group}: {k} is not a setting");
        }
        v[k.as_str()] = x.clone();
    }
    Ok(serde_json::from_value(v)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_are_the_settable_fields_that_differ() {
        let now = json!({"rx_max_pending": 8192, "rx_pending": 1024, "tx_pending": 1024});
        let want = json!({"rx_max_pending": 1, "rx_pending": 4096, "tx_pending": 1024});
        let c = changes(Group::Rings, &now, &want);
        assert_eq!(Value::Object(c), json!({"rx_pending": 4096}));
        let f = changes(Group::Features, &json!({"rx-gro": true, "tx-sg": true}), &json!({"rx-gro": false, "x": true}));
        assert_eq!(Value::Object(f), json!({"rx-gro": false}));
    }

    #[test]
    fn merged_lays_changes_over_the_current_struct() {
        let cur = ethtool::Ringparam { rx_max_pending: 8192, rx_pending: 512, tx_pending: 512, ..Default::default() };
        let mut c = Map::new();
        c.insert("rx_pending".into(), json!(8192));
        let m = merged(cur, Group::Rings, &c).unwrap();
        assert_eq!((m.rx_pending, m.tx_pending, m.rx_max_pending), (8192, 512, 8192));
        c.insert("rx_max_pending".into(), json!(1));
        assert!(merged(cur, Group::Rings, &c).is_err());
        let p = ethtool::Pauseparam { autoneg: 1, rx_pause: 1, tx_pause: 1, ..Default::default() };
        let mut c = Map::new();
        c.insert("rx_pause".into(), json!(false));
        assert_eq!(merged(p, Group::Pause, &c).unwrap().rx_pause, 0);
    }
}
