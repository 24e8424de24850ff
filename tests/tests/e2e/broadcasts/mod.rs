//! Broadcasts through the real fan-out workers: audiences, scheduling, recovery and lanes.

mod end_to_end;
mod lanes;
