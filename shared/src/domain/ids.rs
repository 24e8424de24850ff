//! Time-ordered ids (UUIDv7) whose embedded timestamp is the record's creation time.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

/// A new id and the creation time it encodes (millisecond precision). Storing exactly this
/// time as `created_at` keeps `ORDER BY id` and `ORDER BY created_at` identical.
pub fn new_id() -> (Uuid, DateTime<Utc>) {
    let id = Uuid::now_v7();
    (id, created_at(id))
}

/// The creation time a UUIDv7 encodes (the Unix epoch for other versions).
pub fn created_at(id: Uuid) -> DateTime<Utc> {
    let millis = id
        .get_timestamp()
        .map(|ts| {
            let (secs, nanos) = ts.to_unix();
            secs as i64 * 1000 + i64::from(nanos / 1_000_000)
        })
        .unwrap_or(0);
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or_default()
}

/// The smallest UUIDv7 of millisecond `millis`: `id >= lowest_id_at(ms)` ⟺ created at or after `ms`.
pub fn lowest_id_at(millis: i64) -> Uuid {
    let millis = u64::try_from(millis.max(0)).unwrap_or(0).min((1 << 48) - 1);
    uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid()
}

/// The smallest id created strictly after `time`: `id >= first_id_after(t)` ⟺ `created_at > t`.
pub fn first_id_after(time: DateTime<Utc>) -> Uuid {
    // created_at has whole milliseconds, so "after 12:00:00.5004" means "from .501 on".
    lowest_id_at(time.timestamp_millis() + 1)
}

/// The smallest id created at or after `time`: `id < first_id_at_or_after(t)` ⟺ `created_at < t`.
pub fn first_id_at_or_after(time: DateTime<Utc>) -> Uuid {
    let millis = time.timestamp_millis();
    let exact = time.timestamp_subsec_nanos().is_multiple_of(1_000_000);
    lowest_id_at(if exact { millis } else { millis + 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn the_id_encodes_its_creation_time() {
        let (id, at) = new_id();
        assert_eq!(created_at(id), at);
        assert!((Utc::now() - at).num_seconds().abs() < 5);
    }

    #[test]
    fn time_bounds_order_like_creation_times() {
        let (id, at) = new_id();
        assert!(id >= first_id_after(at - Duration::milliseconds(1)));
        assert!(id < first_id_after(at));
        assert!(id < first_id_at_or_after(at + Duration::microseconds(1)));
        assert!(id >= first_id_at_or_after(at));
        assert!(lowest_id_at(1) > lowest_id_at(0));
    }
}
