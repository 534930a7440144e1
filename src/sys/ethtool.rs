//! SIOCETHTOOL: one safe function per ethtool command lltune uses, get and set. The only
//! `unsafe` code of the crate is here, in `ethtool()` and the `Uapi` impls below.
//!
//! Layouts follow include/uapi/linux/ethtool.h field for field (the tests pin `size_of` and
//! offsets). The legacy ioctl is used rather than ethtool-netlink: it is synchronous, needs no
//! netlink library, and covers rings, coalescing, pause and channels on every kernel lltune
//! supports (the rust-netlink crates cannot set rings or coalescing today).
//!
//! The surprising part: "not supported" comes back as EOPNOTSUPP from the core when the driver
//! lacks the op, but some drivers answer EINVAL to a get they do not implement; both mean
//! "this NIC cannot" (`EthtoolError::is_unsupported`), not "we failed".

use std::ffi::{c_char, c_int, c_void};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use serde::{Deserialize, Serialize};

/// Size of `ifr_name`, NUL included (include/uapi/linux/if.h): names are at most 15 bytes.
pub const IFNAMSIZ: usize = libc::IFNAMSIZ;
/// Length of one string of a string set (include/uapi/linux/ethtool.h).
pub const ETH_GSTRING_LEN: usize = 32;
/// `enum ethtool_stringset`: device feature names.
pub const ETH_SS_FEATURES: u32 = 4;

/// Command numbers, from include/uapi/linux/ethtool.h.
pub mod cmd {
    pub const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;
    pub const ETHTOOL_GCOALESCE: u32 = 0x0000_000e;
    pub const ETHTOOL_SCOALESCE: u32 = 0x0000_000f;
    pub const ETHTOOL_GRINGPARAM: u32 = 0x0000_0010;
    pub const ETHTOOL_SRINGPARAM: u32 = 0x0000_0011;
    pub const ETHTOOL_GPAUSEPARAM: u32 = 0x0000_0012;
    pub const ETHTOOL_SPAUSEPARAM: u32 = 0x0000_0013;
    pub const ETHTOOL_GSTRINGS: u32 = 0x0000_001b;
    pub const ETHTOOL_GSSET_INFO: u32 = 0x0000_0037;
    pub const ETHTOOL_GFEATURES: u32 = 0x0000_003a;
    pub const ETHTOOL_SFEATURES: u32 = 0x0000_003b;
    pub const ETHTOOL_GCHANNELS: u32 = 0x0000_003c;
    pub const ETHTOOL_SCHANNELS: u32 = 0x0000_003d;
    pub const ETHTOOL_GET_TS_INFO: u32 = 0x0000_0041;
    pub const ETHTOOL_GLINKSETTINGS: u32 = 0x0000_004c;
}
use cmd::*;

/// A SIOCETHTOOL command that failed, with the kernel's errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SIOCETHTOOL {cmd} on {ifname}: {}", strerror(*errno))]
pub struct EthtoolError {
    /// The command's uapi name (`ETHTOOL_GRINGPARAM`), or `socket` when no socket could be had.
    pub cmd: &'static str,
    pub ifname: String,
    pub errno: Errno,
}

impl EthtoolError {
    /// True when the device does not implement the command: EOPNOTSUPP, or EINVAL on a get
    /// (drivers without the op used to answer EINVAL). On a set, EINVAL means a bad value.
    pub fn is_unsupported(&self) -> bool {
        self.errno == Errno::EOPNOTSUPP || (self.errno == Errno::EINVAL && self.cmd.starts_with("ETHTOOL_G"))
    }
}

/// The C library's text for an errno ("Operation not supported", as `ethtool` prints it; nix's
/// own table says "... on transport endpoint" for EOPNOTSUPP).
fn strerror(errno: Errno) -> String {
    let code = errno as i32;
    let text = std::io::Error::from_raw_os_error(code).to_string();
    match text.strip_suffix(&format!(" (os error {code})")) {
        Some(t) => t.to_string(),
        None => text,
    }
}

mod raw {
    // `struct ifreq` whose `ifr_data` points at the ethtool command struct
    // (net/ethtool/ioctl.c, dev_ethtool). The macro makes the fn `pub`; this module keeps it
    // private to the file.
    nix::ioctl_readwrite_bad!(siocethtool, libc::SIOCETHTOOL, libc::ifreq);
}

/// `ifr_name` for an interface name: 1 to IFNAMSIZ-1 bytes, no NUL, no '/' (as the kernel's
/// dev_valid_name requires; anything else cannot name a device).
fn ifr_name(ifname: &str, cmd: &'static str) -> Result<[c_char; IFNAMSIZ], EthtoolError> {
    let err = |errno| EthtoolError { cmd, ifname: ifname.to_string(), errno };
    if ifname.len() >= IFNAMSIZ {
        return Err(err(Errno::ENAMETOOLONG));
    }
    if ifname.is_empty() || ifname.bytes().any(|b| b == 0 || b == b'/') {
        return Err(err(Errno::ENODEV));
    }
    let mut name = [0 as c_char; IFNAMSIZ];
    for (dst, b) in name.iter_mut().zip(ifname.bytes()) {
        *dst = b as c_char;
    }
    Ok(name)
}

/// Issues one SIOCETHTOOL on a fresh AF_INET datagram socket (any socket reaches
/// dev_ioctl; the socket lives only for this call, so callers need no handle).
///
/// # Safety
/// `data` must point to a writable buffer, valid for the whole call, at least as large as
/// everything the kernel reads or writes for the command stored in its first `u32`.
unsafe fn ethtool(ifname: &str, cmd: &'static str, data: *mut c_void) -> Result<c_int, EthtoolError> {
    let name = ifr_name(ifname, cmd)?;
    let err = |errno| EthtoolError { cmd, ifname: ifname.to_string(), errno };
    let fd: OwnedFd = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None)
        .map_err(|errno| EthtoolError { cmd: "socket", ifname: ifname.to_string(), errno })?;
    let mut ifr =
        libc::ifreq { ifr_name: name, ifr_ifru: libc::__c_anonymous_ifr_ifru { ifru_data: data.cast::<c_char>() } };
    // SAFETY: `ifr` is a live local for the whole call and `fd` an open socket borrowed for
    // it; `ifr.ifr_ifru.ifru_data` is `data`, valid and large enough per this fn's contract.
    unsafe { raw::siocethtool(fd.as_raw_fd(), &mut ifr) }.map_err(err)
}

/// A `#[repr(C)]` struct that is the whole uapi argument of its commands.
///
/// # Safety
/// Implementors must have exactly the layout of the uapi struct, with `cmd: u32` first, so the
/// kernel never reads or writes past `size_of::<Self>()` for commands passed to `call`.
unsafe trait Uapi: Sized {
    fn set_cmd(&mut self, cmd: u32);
}

/// Runs a fixed-size command: `value.cmd` is set to `code`.
fn call<T: Uapi>(ifname: &str, code: u32, name: &'static str, value: &mut T) -> Result<c_int, EthtoolError> {
    value.set_cmd(code);
    // SAFETY: `value` is an exclusive borrow that outlives the call, and `T: Uapi` promises
    // it spans the whole struct the kernel copies for this command.
    unsafe { ethtool(ifname, name, (value as *mut T).cast::<c_void>()) }
}

/// Runs a variable-size command on a buffer of 32-bit words (first word = command).
///
/// # Safety
/// `buf` must be at least as long as everything the kernel writes for this command given
/// the header words already in `buf`.
unsafe fn call_words(ifname: &str, code: u32, name: &'static str, buf: &mut [u32]) -> Result<c_int, EthtoolError> {
    buf[0] = code;
    // SAFETY: `buf` is an exclusive borrow for the call; its length is the caller's promise.
    unsafe { ethtool(ifname, name, buf.as_mut_ptr().cast::<c_void>()) }
}

macro_rules! uapi {
    ($($t:ty),*) => {$(
        // SAFETY: `#[repr(C)]`, `cmd: u32` first, layout pinned against the uapi header by the
        // size/offset tests at the end of this file.
        unsafe impl Uapi for $t {
            fn set_cmd(&mut self, cmd: u32) {
                self.cmd = cmd;
            }
        }
    )*};
}
uapi!(RawDrvinfo, Ringparam, Coalesce, Pauseparam, Channels, TsInfo, SsetInfoOne);

// SAFETY: `#[repr(C)]`: the 48-byte `ethtool_link_settings` header (cmd first) followed by
// room for 3 * 127 mask words, the most any `link_mode_masks_nwords` (an `__s8`) can ask for.
unsafe impl Uapi for LinkSettingsBuf {
    fn set_cmd(&mut self, cmd: u32) {
        self.settings.cmd = cmd;
    }
}

/// Serde for uapi `__u32` fields that are flags: JSON `true`/`false`, read back from a bool or
/// a number.
mod flag {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(*v != 0)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrNum {
        Bool(bool),
        Num(u32),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        Ok(match BoolOrNum::deserialize(d)? {
            BoolOrNum::Bool(b) => u32::from(b),
            BoolOrNum::Num(n) => u32::from(n != 0),
        })
    }
}

/// `struct ethtool_drvinfo` (196 bytes), as the kernel fills it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct RawDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// Text of a NUL-padded C char array (bytes after the first NUL ignored).
fn c_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim().to_string()
}

/// Driver identity from ETHTOOL_GDRVINFO (`ethtool -i`); empty strings when the driver
/// leaves a field unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverInfo {
    pub driver: String,
    pub version: String,
    pub fw_version: String,
    pub bus_info: String,
    pub erom_version: String,
}

impl From<&RawDrvinfo> for DriverInfo {
    fn from(r: &RawDrvinfo) -> DriverInfo {
        DriverInfo {
            driver: c_text(&r.driver),
            version: c_text(&r.version),
            fw_version: c_text(&r.fw_version),
            bus_info: c_text(&r.bus_info),
            erom_version: c_text(&r.erom_version),
        }
    }
}

/// `struct ethtool_ringparam` (36 bytes): ring sizes in descriptors (`ethtool -g`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ringparam {
    #[serde(skip)]
    pub cmd: u32,
    pub rx_max_pending: u32,
    pub rx_mini_max_pending: u32,
    pub rx_jumbo_max_pending: u32,
    pub tx_max_pending: u32,
    pub rx_pending: u32,
    pub rx_mini_pending: u32,
    pub rx_jumbo_pending: u32,
    pub tx_pending: u32,
}

impl Ringparam {
    /// Refuses what no driver reports: a ring above its maximum (the kernel refuses to set
    /// one, `ethtool_set_ringparam` in net/ethtool/ioctl.c). Names the fields.
    pub fn check(&self) -> Result<(), String> {
        let pairs = [
            ("rx_pending", self.rx_pending, "rx_max_pending", self.rx_max_pending),
            ("rx_mini_pending", self.rx_mini_pending, "rx_mini_max_pending", self.rx_mini_max_pending),
            ("rx_jumbo_pending", self.rx_jumbo_pending, "rx_jumbo_max_pending", self.rx_jumbo_max_pending),
            ("tx_pending", self.tx_pending, "tx_max_pending", self.tx_max_pending),
        ];
        check_below_max(&pairs)
    }
}

impl Channels {
    /// Refuses what no driver reports: more channels of a kind than its maximum (the
    /// kernel refuses to set them, `ethtool_set_channels`). Names the fields.
    pub fn check(&self) -> Result<(), String> {
        let pairs = [
            ("rx_count", self.rx_count, "max_rx", self.max_rx),
            ("tx_count", self.tx_count, "max_tx", self.max_tx),
            ("other_count", self.other_count, "max_other", self.max_other),
            ("combined_count", self.combined_count, "max_combined", self.max_combined),
        ];
        check_below_max(&pairs)
    }
}

fn check_below_max(pairs: &[(&str, u32, &str, u32)]) -> Result<(), String> {
    for &(name, value, max_name, max) in pairs {
        if value > max {
            return Err(format!("{name} {value} is above {max_name} {max}: no NIC reports that"));
        }
    }
    Ok(())
}

/// `struct ethtool_coalesce` (92 bytes): interrupt coalescing (`ethtool -c`); `*_usecs` in
/// microseconds, `*_frames` in packets, `pkt_rate_*` in packets per second,
/// `rate_sample_interval` in seconds.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Coalesce {
    #[serde(skip)]
    pub cmd: u32,
    pub rx_coalesce_usecs: u32,
    pub rx_max_coalesced_frames: u32,
    pub rx_coalesce_usecs_irq: u32,
    pub rx_max_coalesced_frames_irq: u32,
    pub tx_coalesce_usecs: u32,
    pub tx_max_coalesced_frames: u32,
    pub tx_coalesce_usecs_irq: u32,
    pub tx_max_coalesced_frames_irq: u32,
    pub stats_block_coalesce_usecs: u32,
    #[serde(with = "flag")]
    pub use_adaptive_rx_coalesce: u32,
    #[serde(with = "flag")]
    pub use_adaptive_tx_coalesce: u32,
    pub pkt_rate_low: u32,
    pub rx_coalesce_usecs_low: u32,
    pub rx_max_coalesced_frames_low: u32,
    pub tx_coalesce_usecs_low: u32,
    pub tx_max_coalesced_frames_low: u32,
    pub pkt_rate_high: u32,
    pub rx_coalesce_usecs_high: u32,
    pub rx_max_coalesced_frames_high: u32,
    pub tx_coalesce_usecs_high: u32,
    pub tx_max_coalesced_frames_high: u32,
    pub rate_sample_interval: u32,
}

/// `struct ethtool_pauseparam` (16 bytes): Ethernet flow control (`ethtool -a`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pauseparam {
    #[serde(skip)]
    pub cmd: u32,
    #[serde(with = "flag")]
    pub autoneg: u32,
    #[serde(with = "flag")]
    pub rx_pause: u32,
    #[serde(with = "flag")]
    pub tx_pause: u32,
}

/// `struct ethtool_channels` (36 bytes): queue counts (`ethtool -l`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Channels {
    #[serde(skip)]
    pub cmd: u32,
    pub max_rx: u32,
    pub max_tx: u32,
    pub max_other: u32,
    pub max_combined: u32,
    pub rx_count: u32,
    pub tx_count: u32,
    pub other_count: u32,
    pub combined_count: u32,
}

/// `struct ethtool_ts_info` (44 bytes): timestamping capabilities and PHC (`ethtool -T`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TsInfo {
    pub cmd: u32,
    /// Bits of SOF_TIMESTAMPING_* (include/uapi/linux/net_tstamp.h).
    pub so_timestamping: u32,
    /// Index of /dev/ptpN, or -1 when the device has no PTP hardware clock.
    pub phc_index: i32,
    /// Bits `1 << HWTSTAMP_TX_*`.
    pub tx_types: u32,
    pub tx_reserved: [u32; 3],
    /// Bits `1 << HWTSTAMP_FILTER_*`.
    pub rx_filters: u32,
    pub rx_reserved: [u32; 3],
}

/// Names of SOF_TIMESTAMPING_* bits as the kernel's ethtool strings name them
/// (net/ethtool/common.c, `sof_timestamping_names`; `ethtool -T` prints the same).
const SOF_TIMESTAMPING_NAMES: &[&str] = &[
    "hardware-transmit",
    "software-transmit",
    "hardware-receive",
    "software-receive",
    "software-system-clock",
    "hardware-legacy-clock",
    "hardware-raw-clock",
    "option-id",
    "sched-transmit",
    "ack-transmit",
    "option-cmsg",
    "option-tsonly",
    "option-stats",
    "option-pktinfo",
    "option-tx-swhw",
    "bind-phc",
    "option-id-tcp",
    "option-rx-filter",
];
/// `ts_tx_type_names` (net/ethtool/common.c), by HWTSTAMP_TX_* value.
const TS_TX_TYPE_NAMES: &[&str] = &["off", "on", "onestep-sync", "onestep-p2p"];
/// `ts_rx_filter_names` (net/ethtool/common.c), by HWTSTAMP_FILTER_* value.
const TS_RX_FILTER_NAMES: &[&str] = &[
    "none",
    "all",
    "some",
    "ptpv1-l4-event",
    "ptpv1-l4-sync",
    "ptpv1-l4-delay-req",
    "ptpv2-l4-event",
    "ptpv2-l4-sync",
    "ptpv2-l4-delay-req",
    "ptpv2-l2-event",
    "ptpv2-l2-sync",
    "ptpv2-l2-delay-req",
    "ptpv2-event",
    "ptpv2-sync",
    "ptpv2-delay-req",
    "ntp-all",
];

/// Names of the set bits of `mask`; a bit with no known name reads `bit-N`.
pub fn bit_names(mask: u32, names: &[&str]) -> Vec<String> {
    (0..32)
        .filter(|bit| mask & (1u32 << bit) != 0)
        .map(|bit| names.get(bit as usize).map(|n| n.to_string()).unwrap_or_else(|| format!("bit-{bit}")))
        .collect()
}

impl TsInfo {
    pub fn so_timestamping_names(&self) -> Vec<String> {
        bit_names(self.so_timestamping, SOF_TIMESTAMPING_NAMES)
    }
    pub fn tx_type_names(&self) -> Vec<String> {
        bit_names(self.tx_types, TS_TX_TYPE_NAMES)
    }
    pub fn rx_filter_names(&self) -> Vec<String> {
        bit_names(self.rx_filters, TS_RX_FILTER_NAMES)
    }
    /// The PHC index, `None` when the device has none (-1).
    pub fn phc(&self) -> Option<u32> {
        u32::try_from(self.phc_index).ok()
    }
}

/// `struct ethtool_sset_info` (16-byte header) followed by room for one set size: lltune
/// queries one string set at a time, so the kernel writes at most one `data` word.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct SsetInfoOne {
    cmd: u32,
    reserved: u32,
    sset_mask: u64,
    data: [u32; 1],
}

/// Fixed part of `struct ethtool_link_settings` (48 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkSettings {
    pub cmd: u32,
    /// Mb/s; `u32::MAX` (SPEED_UNKNOWN) when unknown.
    pub speed: u32,
    /// DUPLEX_HALF 0, DUPLEX_FULL 1, DUPLEX_UNKNOWN 0xff.
    pub duplex: u8,
    /// PORT_TP 0, PORT_FIBRE 3, PORT_DA 5, PORT_NONE 0xef, PORT_OTHER 0xff, ...
    pub port: u8,
    pub phy_address: u8,
    /// AUTONEG_DISABLE 0, AUTONEG_ENABLE 1.
    pub autoneg: u8,
    pub mdio_support: u8,
    pub eth_tp_mdix: u8,
    pub eth_tp_mdix_ctrl: u8,
    pub link_mode_masks_nwords: i8,
    pub transceiver: u8,
    pub master_slave_cfg: u8,
    pub master_slave_state: u8,
    pub rate_matching: u8,
    pub reserved: [u32; 7],
}

/// Most words a link-mode mask can have: `link_mode_masks_nwords` is an `__s8`.
const LINK_MODE_MAX_NWORDS: usize = 127;

/// `struct ethtool_link_settings` with room for the three largest possible link-mode masks
/// (supported, advertising, lp_advertising), so no kernel can write past it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct LinkSettingsBuf {
    settings: LinkSettings,
    link_mode_masks: [u32; 3 * LINK_MODE_MAX_NWORDS],
}

impl LinkSettingsBuf {
    fn new(settings: LinkSettings) -> LinkSettingsBuf {
        LinkSettingsBuf { settings, link_mode_masks: [0; 3 * LINK_MODE_MAX_NWORDS] }
    }
}

impl LinkSettings {
    /// Speed in Mb/s; `None` when unknown (SPEED_UNKNOWN, or 0 while the link is down).
    pub fn speed_mbps(&self) -> Option<u32> {
        (self.speed != 0 && self.speed != u32::MAX).then_some(self.speed)
    }
    pub fn duplex_name(&self) -> Option<&'static str> {
        match self.duplex {
            0 => Some("half"),
            1 => Some("full"),
            _ => None,
        }
    }
}

/// One device feature (offload) from ETHTOOL_GFEATURES, named by ETH_SS_FEATURES strings
/// (net/ethtool/common.c `netdev_features_strings`: "rx-gro", "tx-tcp-segmentation", ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    /// Bit number in the kernel's feature words: what `set_features` takes.
    pub index: usize,
    pub name: String,
    /// Changeable on this device (`available`).
    pub available: bool,
    /// What the user asked for; differs from `active` when a dependency holds it off.
    pub requested: bool,
    pub active: bool,
    /// Not changeable on any device (`never_changed`).
    pub never_changed: bool,
}

impl Feature {
    /// `ethtool -k` prints "[fixed]" for these: not changeable here or anywhere.
    pub fn is_fixed(&self) -> bool {
        !self.available || self.never_changed
    }
}

/// What ETHTOOL_SFEATURES reported besides success (`ETHTOOL_F_*` bits of its return value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetFeaturesFlags {
    /// Some requested features are not changeable; they were ignored.
    pub unsupported: bool,
    /// Recorded, but the resulting state differs from the request (dependencies).
    pub wish: bool,
    /// Applied through legacy driver callbacks.
    pub compat: bool,
}

/// ETHTOOL_GDRVINFO: driver name, version, firmware version, bus address.
pub fn get_drvinfo(ifname: &str) -> Result<DriverInfo, EthtoolError> {
    let mut raw = RawDrvinfo::default();
    call(ifname, ETHTOOL_GDRVINFO, "ETHTOOL_GDRVINFO", &mut raw)?;
    Ok(DriverInfo::from(&raw))
}

/// ETHTOOL_GRINGPARAM: ring sizes and their maxima.
pub fn get_ringparam(ifname: &str) -> Result<Ringparam, EthtoolError> {
    let mut v = Ringparam::default();
    call(ifname, ETHTOOL_GRINGPARAM, "ETHTOOL_GRINGPARAM", &mut v)?;
    Ok(v)
}

/// ETHTOOL_SRINGPARAM: sets `rx_pending`, `rx_mini_pending`, `rx_jumbo_pending`,
/// `tx_pending` (the `*_max_pending` fields are read-only). Start from `get_ringparam`.
pub fn set_ringparam(ifname: &str, value: &Ringparam) -> Result<(), EthtoolError> {
    let mut v = *value;
    call(ifname, ETHTOOL_SRINGPARAM, "ETHTOOL_SRINGPARAM", &mut v).map(drop)
}

/// ETHTOOL_GCOALESCE: interrupt coalescing parameters.
pub fn get_coalesce(ifname: &str) -> Result<Coalesce, EthtoolError> {
    let mut v = Coalesce::default();
    call(ifname, ETHTOOL_GCOALESCE, "ETHTOOL_GCOALESCE", &mut v)?;
    Ok(v)
}

/// ETHTOOL_SCOALESCE: sets every field at once (drivers reject fields they do not
/// support when non-zero). Start from `get_coalesce`.
pub fn set_coalesce(ifname: &str, value: &Coalesce) -> Result<(), EthtoolError> {
    let mut v = *value;
    call(ifname, ETHTOOL_SCOALESCE, "ETHTOOL_SCOALESCE", &mut v).map(drop)
}

/// ETHTOOL_GPAUSEPARAM: flow control.
pub fn get_pauseparam(ifname: &str) -> Result<Pauseparam, EthtoolError> {
    let mut v = Pauseparam::default();
    call(ifname, ETHTOOL_GPAUSEPARAM, "ETHTOOL_GPAUSEPARAM", &mut v)?;
    Ok(v)
}

/// ETHTOOL_SPAUSEPARAM.
pub fn set_pauseparam(ifname: &str, value: &Pauseparam) -> Result<(), EthtoolError> {
    let mut v = *value;
    call(ifname, ETHTOOL_SPAUSEPARAM, "ETHTOOL_SPAUSEPARAM", &mut v).map(drop)
}

/// ETHTOOL_GCHANNELS: queue counts and their maxima.
pub fn get_channels(ifname: &str) -> Result<Channels, EthtoolError> {
    let mut v = Channels::default();
    call(ifname, ETHTOOL_GCHANNELS, "ETHTOOL_GCHANNELS", &mut v)?;
    Ok(v)
}

/// ETHTOOL_SCHANNELS: sets the `*_count` fields (`max_*` are read-only). Start from
/// `get_channels`.
pub fn set_channels(ifname: &str, value: &Channels) -> Result<(), EthtoolError> {
    let mut v = *value;
    call(ifname, ETHTOOL_SCHANNELS, "ETHTOOL_SCHANNELS", &mut v).map(drop)
}

/// ETHTOOL_GET_TS_INFO: timestamping capabilities and the PHC index.
pub fn get_ts_info(ifname: &str) -> Result<TsInfo, EthtoolError> {
    let mut v = TsInfo::default();
    call(ifname, ETHTOOL_GET_TS_INFO, "ETHTOOL_GET_TS_INFO", &mut v)?;
    Ok(v)
}

/// ETHTOOL_GLINKSETTINGS: speed, duplex, port, autoneg. Two calls, as the uapi requires: the
/// first (nwords 0) makes the kernel answer `-nwords`, the second passes it back.
pub fn get_link_settings(ifname: &str) -> Result<LinkSettings, EthtoolError> {
    let name = "ETHTOOL_GLINKSETTINGS";
    let mut buf = LinkSettingsBuf::new(LinkSettings::default());
    call(ifname, ETHTOOL_GLINKSETTINGS, name, &mut buf)?;
    let nwords = buf.settings.link_mode_masks_nwords;
    if nwords >= 0 {
        // The handshake was not honoured (kernels must answer negative): nothing to trust.
        return Err(EthtoolError { cmd: name, ifname: ifname.to_string(), errno: Errno::EPROTO });
    }
    let ask = LinkSettings { link_mode_masks_nwords: -nwords, ..LinkSettings::default() };
    let mut buf = LinkSettingsBuf::new(ask);
    call(ifname, ETHTOOL_GLINKSETTINGS, name, &mut buf)?;
    Ok(buf.settings)
}

/// Size of one string set (ETHTOOL_GSSET_INFO); `Ok(0)` when the device has none of it.
fn get_sset_len(ifname: &str, string_set: u32) -> Result<u32, EthtoolError> {
    let mut v = SsetInfoOne { sset_mask: 1u64 << string_set, ..SsetInfoOne::default() };
    call(ifname, ETHTOOL_GSSET_INFO, "ETHTOOL_GSSET_INFO", &mut v)?;
    Ok(if v.sset_mask & (1u64 << string_set) != 0 { v.data[0] } else { 0 })
}

/// The strings of one string set (ETHTOOL_GSSET_INFO then ETHTOOL_GSTRINGS).
fn get_strings(ifname: &str, string_set: u32) -> Result<Vec<String>, EthtoolError> {
    let count = get_sset_len(ifname, string_set)? as usize;
    if count == 0 {
        return Ok(Vec::new());
    }
    // Header (cmd, string_set, len) then `count` strings of ETH_GSTRING_LEN bytes.
    let words_per_string = ETH_GSTRING_LEN / 4;
    let mut buf = vec![0u32; 3 + count * words_per_string];
    buf[1] = string_set;
    buf[2] = count as u32;
    // SAFETY: the kernel writes the header and `len` strings, `len` being the set's size from
    // __ethtool_get_sset_count; for ETH_SS_FEATURES that is NETDEV_FEATURE_COUNT, a build-time
    // constant, so it equals the `count` the buffer was sized for just above.
    unsafe { call_words(ifname, ETHTOOL_GSTRINGS, "ETHTOOL_GSTRINGS", &mut buf)? };
    let len = (buf[2] as usize).min(count);
    let bytes: Vec<u8> = buf[3..].iter().flat_map(|w| w.to_ne_bytes()).collect();
    Ok(bytes.chunks(ETH_GSTRING_LEN).take(len).map(c_text).collect())
}

/// Number of 32-bit feature words the kernel uses (ETHTOOL_GFEATURES with size 0).
fn get_feature_words(ifname: &str) -> Result<usize, EthtoolError> {
    let mut buf = [0u32; 2];
    // SAFETY: with `size` 0 the kernel writes the 8-byte header and zero feature blocks
    // (ethtool_get_features copies min(size, ETHTOOL_DEV_FEATURE_WORDS) blocks).
    unsafe { call_words(ifname, ETHTOOL_GFEATURES, "ETHTOOL_GFEATURES", &mut buf)? };
    Ok(buf[1] as usize)
}

/// Decodes a GFEATURES answer: blocks of (available, requested, active, never_changed).
fn decode_features(names: &[String], blocks: &[u32]) -> Vec<Feature> {
    names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let block = blocks.get(4 * (i / 32)..4 * (i / 32) + 4)?;
            let bit = 1u32 << (i % 32);
            Some(Feature {
                index: i,
                name: name.clone(),
                available: block[0] & bit != 0,
                requested: block[1] & bit != 0,
                active: block[2] & bit != 0,
                never_changed: block[3] & bit != 0,
            })
        })
        .collect()
}

/// ETHTOOL_GFEATURES with ETH_SS_FEATURES names, in kernel bit order. Bits the kernel leaves
/// unnamed (retired features) are skipped, so use `Feature::index`, not the position.
pub fn get_features(ifname: &str) -> Result<Vec<Feature>, EthtoolError> {
    let names = get_strings(ifname, ETH_SS_FEATURES)?;
    let words = names.len().div_ceil(32);
    let mut buf = vec![0u32; 2 + 4 * words];
    buf[1] = words as u32;
    // SAFETY: the kernel writes the 8-byte header and min(size, its word count) blocks of 16
    // bytes; `size` is `words`, and the buffer holds 2 + 4 * `words` u32s.
    unsafe { call_words(ifname, ETHTOOL_GFEATURES, "ETHTOOL_GFEATURES", &mut buf)? };
    let mut features = decode_features(&names, &buf[2..]);
    features.retain(|f| !f.name.is_empty());
    Ok(features)
}

/// Every get discovery sends about one interface, each with its answer or its error.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub drvinfo: Result<DriverInfo, EthtoolError>,
    pub link_settings: Result<LinkSettings, EthtoolError>,
    pub ts_info: Result<TsInfo, EthtoolError>,
    pub features: Result<Vec<Feature>, EthtoolError>,
    pub coalesce: Result<Coalesce, EthtoolError>,
    pub rings: Result<Ringparam, EthtoolError>,
    pub pause: Result<Pauseparam, EthtoolError>,
    pub channels: Result<Channels, EthtoolError>,
}

impl Snapshot {
    /// Asks the running kernel, one get after the other.
    pub fn read(ifname: &str) -> Snapshot {
        Snapshot {
            drvinfo: get_drvinfo(ifname),
            link_settings: get_link_settings(ifname),
            ts_info: get_ts_info(ifname),
            features: get_features(ifname),
            coalesce: get_coalesce(ifname),
            rings: get_ringparam(ifname),
            pause: get_pauseparam(ifname),
            channels: get_channels(ifname),
        }
    }

    /// Every get answered by `e` (a host that sends none).
    pub fn failed(e: &EthtoolError) -> Snapshot {
        Snapshot {
            drvinfo: Err(e.clone()),
            link_settings: Err(e.clone()),
            ts_info: Err(e.clone()),
            features: Err(e.clone()),
            coalesce: Err(e.clone()),
            rings: Err(e.clone()),
            pause: Err(e.clone()),
            channels: Err(e.clone()),
        }
    }
}

/// Encodes an SFEATURES request: `(bit index, wanted)` pairs into (valid, requested) blocks.
fn encode_sfeatures(words: usize, changes: &[(usize, bool)]) -> Vec<u32> {
    let mut buf = vec![0u32; 2 + 2 * words];
    buf[1] = words as u32;
    for &(index, on) in changes {
        let w = index / 32;
        if w >= words {
            continue;
        }
        let bit = 1u32 << (index % 32);
        buf[2 + 2 * w] |= bit;
        if on {
            buf[3 + 2 * w] |= bit;
        }
    }
    buf
}

/// ETHTOOL_SFEATURES: turns features on or off by `Feature::index`. An index the kernel does
/// not know fails with EINVAL.
pub fn set_features(ifname: &str, changes: &[(usize, bool)]) -> Result<SetFeaturesFlags, EthtoolError> {
    let name = "ETHTOOL_SFEATURES";
    let words = get_feature_words(ifname)?;
    if changes.iter().any(|&(i, _)| i >= 32 * words) {
        return Err(EthtoolError { cmd: name, ifname: ifname.to_string(), errno: Errno::EINVAL });
    }
    let mut buf = encode_sfeatures(words, changes);
    // SAFETY: SFEATURES only reads: the 8-byte header and `size` blocks of 8 bytes, which is
    // exactly the buffer's length (2 + 2 * `words` u32s).
    let ret = unsafe { call_words(ifname, ETHTOOL_SFEATURES, name, &mut buf)? };
    Ok(SetFeaturesFlags { unsupported: ret & 1 != 0, wish: ret & 2 != 0, compat: ret & 4 != 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// The bytes of a value, to check layouts the way the kernel sees them.
    fn bytes_of<T>(v: &T) -> Vec<u8> {
        // SAFETY: `v` is a live reference to `size_of::<T>()` initialised bytes (all the
        // structs tested are padding-free: their sizes equal the sum of their fields).
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    fn from_bytes<T: Copy>(b: &[u8]) -> T {
        assert_eq!(b.len(), size_of::<T>());
        // SAFETY: the length is checked; every bit pattern is valid for these integer-only
        // structs; read_unaligned has no alignment requirement.
        unsafe { std::ptr::read_unaligned(b.as_ptr().cast::<T>()) }
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn uapi_sizes_match_the_header() {
        // include/uapi/linux/ethtool.h: all-__u32 structs are 4 * number of fields.
        assert_eq!(size_of::<RawDrvinfo>(), 196);
        assert_eq!(size_of::<Ringparam>(), 36);
        assert_eq!(size_of::<Coalesce>(), 92);
        assert_eq!(size_of::<Pauseparam>(), 16);
        assert_eq!(size_of::<Channels>(), 36);
        assert_eq!(size_of::<TsInfo>(), 44);
        assert_eq!(size_of::<LinkSettings>(), 48);
        assert_eq!(size_of::<LinkSettingsBuf>(), 48 + 3 * 127 * 4);
        // ethtool_sset_info: cmd, reserved, __u64 sset_mask = 16-byte header, then data[].
        assert_eq!(offset_of!(SsetInfoOne, data), 16);
        assert_eq!(offset_of!(SsetInfoOne, sset_mask), 8);
    }

    #[test]
    fn uapi_offsets_match_the_header() {
        assert_eq!(offset_of!(RawDrvinfo, driver), 4);
        assert_eq!(offset_of!(RawDrvinfo, version), 36);
        assert_eq!(offset_of!(RawDrvinfo, fw_version), 68);
        assert_eq!(offset_of!(RawDrvinfo, bus_info), 100);
        assert_eq!(offset_of!(RawDrvinfo, erom_version), 132);
        assert_eq!(offset_of!(RawDrvinfo, reserved2), 164);
        assert_eq!(offset_of!(RawDrvinfo, n_priv_flags), 176);
        assert_eq!(offset_of!(RawDrvinfo, regdump_len), 192);
        assert_eq!(offset_of!(Ringparam, rx_max_pending), 4);
        assert_eq!(offset_of!(Ringparam, rx_pending), 20);
        assert_eq!(offset_of!(Ringparam, tx_pending), 32);
        assert_eq!(offset_of!(Coalesce, rx_coalesce_usecs), 4);
        assert_eq!(offset_of!(Coalesce, stats_block_coalesce_usecs), 36);
        assert_eq!(offset_of!(Coalesce, use_adaptive_rx_coalesce), 40);
        assert_eq!(offset_of!(Coalesce, pkt_rate_low), 48);
        assert_eq!(offset_of!(Coalesce, pkt_rate_high), 68);
        assert_eq!(offset_of!(Coalesce, rate_sample_interval), 88);
        assert_eq!(offset_of!(Pauseparam, tx_pause), 12);
        assert_eq!(offset_of!(Channels, max_combined), 16);
        assert_eq!(offset_of!(Channels, combined_count), 32);
        assert_eq!(offset_of!(TsInfo, phc_index), 8);
        assert_eq!(offset_of!(TsInfo, tx_types), 12);
        assert_eq!(offset_of!(TsInfo, rx_filters), 28);
        assert_eq!(offset_of!(LinkSettings, duplex), 8);
        assert_eq!(offset_of!(LinkSettings, autoneg), 11);
        assert_eq!(offset_of!(LinkSettings, link_mode_masks_nwords), 15);
        assert_eq!(offset_of!(LinkSettings, reserved), 20);
        assert_eq!(offset_of!(LinkSettingsBuf, link_mode_masks), 48);
    }

    #[test]
    fn ringparam_round_trips_through_kernel_bytes() {
        // As the kernel would write it: nine __u32 in declaration order.
        let words: [u32; 9] = [ETHTOOL_GRINGPARAM, 4096, 0, 0, 4096, 512, 0, 0, 1024];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let r: Ringparam = from_bytes(&bytes);
        assert_eq!((r.rx_max_pending, r.tx_max_pending, r.rx_pending, r.tx_pending), (4096, 4096, 512, 1024));
        assert_eq!(bytes_of(&r), bytes);
    }

    #[test]
    fn channels_and_pause_round_trip() {
        let c =
            Channels { cmd: ETHTOOL_SCHANNELS, max_combined: 63, combined_count: 8, max_rx: 1, ..Channels::default() };
        let b = bytes_of(&c);
        assert_eq!(u32_at(&b, 0), ETHTOOL_SCHANNELS);
        assert_eq!(u32_at(&b, 4), 1);
        assert_eq!(u32_at(&b, 16), 63);
        assert_eq!(u32_at(&b, 32), 8);
        assert_eq!(from_bytes::<Channels>(&b), c);
        let p = Pauseparam { cmd: ETHTOOL_GPAUSEPARAM, autoneg: 1, rx_pause: 0, tx_pause: 1 };
        assert_eq!(from_bytes::<Pauseparam>(&bytes_of(&p)), p);
    }

    #[test]
    fn coalesce_fields_sit_in_uapi_order() {
        let c = Coalesce {
            rx_coalesce_usecs: 3,
            tx_max_coalesced_frames_high: 77,
            rate_sample_interval: 9,
            ..Default::default()
        };
        let b = bytes_of(&c);
        assert_eq!(u32_at(&b, 4), 3);
        assert_eq!(u32_at(&b, 84), 77);
        assert_eq!(u32_at(&b, 88), 9);
        assert_eq!(from_bytes::<Coalesce>(&b), c);
    }

    #[test]
    fn drvinfo_strings_stop_at_nul() {
        let mut raw = RawDrvinfo::default();
        raw.driver[..5].copy_from_slice(b"ixgbe");
        raw.fw_version[..14].copy_from_slice(b"0x800007f7 1.2");
        raw.bus_info[..12].copy_from_slice(b"0000:19:00.0");
        raw.version[..3].copy_from_slice(b"5.1");
        raw.version[4] = b'x'; // garbage after the NUL is ignored
        let d = DriverInfo::from(&from_bytes::<RawDrvinfo>(&bytes_of(&raw)));
        assert_eq!(d.driver, "ixgbe");
        assert_eq!(d.version, "5.1");
        assert_eq!(d.fw_version, "0x800007f7 1.2");
        assert_eq!(d.bus_info, "0000:19:00.0");
        assert_eq!(d.erom_version, "");
    }

    #[test]
    fn link_settings_bytes_round_trip() {
        let s = LinkSettings {
            cmd: ETHTOOL_GLINKSETTINGS,
            speed: 25000,
            duplex: 1,
            port: 5,
            autoneg: 1,
            link_mode_masks_nwords: -4,
            reserved: [0, 1, 2, 3, 4, 5, 6],
            ..LinkSettings::default()
        };
        let b = bytes_of(&s);
        assert_eq!(u32_at(&b, 4), 25000);
        assert_eq!(&b[8..12], &[1, 5, 0, 1]);
        assert_eq!(b[15], 0xfc); // -4 as __s8
        assert_eq!(u32_at(&b, 44), 6);
        assert_eq!(from_bytes::<LinkSettings>(&b), s);
        assert_eq!(s.speed_mbps(), Some(25000));
        assert_eq!(s.duplex_name(), Some("full"));
        assert_eq!(LinkSettings { speed: u32::MAX, duplex: 0xff, ..s }.speed_mbps(), None);
        assert_eq!(LinkSettings { duplex: 0xff, ..s }.duplex_name(), None);
    }

    #[test]
    fn ts_info_names_follow_the_kernel_tables() {
        let t = TsInfo {
            so_timestamping: 0b101_0101 | 1 << 20,
            phc_index: 2,
            tx_types: 0b11,
            rx_filters: 1 | 1 << 12,
            ..TsInfo::default()
        };
        assert_eq!(
            t.so_timestamping_names(),
            ["hardware-transmit", "hardware-receive", "software-system-clock", "hardware-raw-clock", "bit-20"]
        );
        assert_eq!(t.tx_type_names(), ["off", "on"]);
        assert_eq!(t.rx_filter_names(), ["none", "ptpv2-event"]);
        assert_eq!(t.phc(), Some(2));
        assert_eq!(TsInfo { phc_index: -1, ..t }.phc(), None);
    }

    #[test]
    fn features_decode_by_bit_index() {
        let names: Vec<String> = (0..40).map(|i| format!("f{i}")).collect();
        // Block 0 (features 0-31), block 1 (32-39): available, requested, active, never_changed.
        let blocks = [0b011, 0b001, 0b101, 0b100, 1 << 3, 1 << 3, 1 << 3, 0];
        let f = decode_features(&names, &blocks);
        assert_eq!(f.len(), 40);
        assert_eq!((f[35].index, f[35].name.as_str()), (35, "f35"));
        assert!(f[0].available && f[0].requested && f[0].active && !f[0].is_fixed());
        assert!(f[1].available && !f[1].active && !f[1].is_fixed());
        assert!(!f[2].available && f[2].active && f[2].never_changed && f[2].is_fixed());
        assert!(f[35].available && f[35].active && !f[35].is_fixed());
        assert!(!f[36].active && f[36].is_fixed());
    }

    #[test]
    fn sfeatures_request_sets_valid_and_requested_bits() {
        let buf = encode_sfeatures(2, &[(0, true), (33, false), (99, true)]);
        assert_eq!(buf, vec![0, 2, 1, 1, 1 << 1, 0]);
    }

    #[test]
    fn errors_keep_errno_text_and_tell_unsupported_apart() {
        let e = EthtoolError { cmd: "ETHTOOL_GRINGPARAM", ifname: "veth0".into(), errno: Errno::EOPNOTSUPP };
        assert_eq!(e.to_string(), "SIOCETHTOOL ETHTOOL_GRINGPARAM on veth0: Operation not supported");
        assert!(e.is_unsupported());
        let get_einval = EthtoolError { errno: Errno::EINVAL, ..e.clone() };
        assert!(get_einval.is_unsupported());
        let set_einval = EthtoolError { cmd: "ETHTOOL_SRINGPARAM", errno: Errno::EINVAL, ..e.clone() };
        assert!(!set_einval.is_unsupported());
        assert!(!EthtoolError { errno: Errno::ENODEV, ..e }.is_unsupported());
    }

    #[test]
    fn interface_names_are_checked_before_any_ioctl() {
        assert_eq!(get_ringparam("a-name-of-16-chr").unwrap_err().errno, Errno::ENAMETOOLONG);
        assert_eq!(get_ringparam("").unwrap_err().errno, Errno::ENODEV);
        assert_eq!(get_ringparam("a/b").unwrap_err().errno, Errno::ENODEV);
        assert_eq!(
            ifr_name("eth0", "x").unwrap()[..5],
            [b'e' as c_char, b't' as c_char, b'h' as c_char, b'0' as c_char, 0]
        );
        // 15 bytes is the longest name that fits with its NUL.
        assert!(ifr_name("fifteen-chars-x", "x").is_ok());
    }

    #[test]
    fn serde_shows_flags_as_booleans_and_skips_cmd() {
        let p = Pauseparam { cmd: 18, autoneg: 1, rx_pause: 0, tx_pause: 1 };
        let v = serde_json::to_value(p).unwrap();
        assert_eq!(v, serde_json::json!({"autoneg": true, "rx_pause": false, "tx_pause": true}));
        let back: Pauseparam = serde_json::from_value(v).unwrap();
        assert_eq!(back, Pauseparam { cmd: 0, ..p });
        let from_num: Pauseparam = serde_json::from_str(r#"{"autoneg": 1, "rx_pause": 0, "tx_pause": 7}"#).unwrap();
        assert_eq!((from_num.autoneg, from_num.tx_pause), (1, 1));
    }
}
