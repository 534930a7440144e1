//! SIOCETHTOOL (stub: replaced by the NIC work).
