//! One integration-test binary (as ripgrep does): each module below is one area.

mod support;
