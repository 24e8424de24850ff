//! Keyset paging (`after` + `pageSize` → `{data, nextAfter}`), shared by the lists that can
//! grow without bound: recipients, topics and topic subscribers.
//!
//! Offset paging gets slower the deeper a client reads and skips or repeats rows when the list
//! changes underneath; a keyset cursor does neither.

use herald_shared::domain::UserId;

use crate::error::ApiError;

/// The page size to use: the default when absent, 400 (never clamped) when outside `1..=max`.
pub fn page_size(requested: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let size = requested.unwrap_or(default);
    if (1..=max).contains(&size) {
        Ok(size)
    } else {
        Err(ApiError::field(
            "pageSize",
            format!("The pageSize must be between 1 and {max}."),
        ))
    }
}

/// An `after` cursor that is a user id: checked like any user id, so a mangled cursor is a 400
/// rather than a silently wrong page.
pub fn after_user(after: Option<String>) -> Result<Option<UserId>, ApiError> {
    after
        .map(|id| UserId::parse(id).map_err(|e| ApiError::field("after", e.to_string())))
        .transpose()
}

/// Cuts `rows`, fetched with a limit of `page_size + 1`, to one page, and names the cursor of
/// the next page: the key of this page's last row, or `None` when the extra row was not there.
pub fn keyset_page<T, K>(
    mut rows: Vec<T>,
    page_size: i64,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, Option<K>) {
    let page_size = usize::try_from(page_size).unwrap_or(usize::MAX);
    if rows.len() <= page_size {
        return (rows, None);
    }
    rows.truncate(page_size);
    let next = rows.last().map(key);
    (rows, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extra_row_decides_whether_a_next_page_exists() {
        let identity = |n: &i32| *n;
        assert_eq!(
            keyset_page(vec![1, 2, 3], 2, identity),
            (vec![1, 2], Some(2))
        );
        assert_eq!(keyset_page(vec![1, 2], 2, identity), (vec![1, 2], None));
        assert_eq!(keyset_page(Vec::<i32>::new(), 2, identity), (vec![], None));
    }

    #[test]
    fn page_sizes_outside_the_range_are_refused() {
        assert_eq!(page_size(None, 100, 1_000).ok(), Some(100));
        assert_eq!(page_size(Some(1_000), 100, 1_000).ok(), Some(1_000));
        assert!(page_size(Some(0), 100, 1_000).is_err());
        assert!(page_size(Some(1_001), 100, 1_000).is_err());
    }
}
