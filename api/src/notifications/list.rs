//! Listing the inbox: paging arithmetic and the parameters of `GET /Notifications`.

use chrono::{DateTime, Utc};
use herald_shared::db::notifications::{ListFilter, SortField};
use herald_shared::domain::FieldErrors;
use uuid::Uuid;

use super::model::{
    Notification, NotificationPage, NotificationStatus, NotificationType, Priority,
};

pub const DEFAULT_PAGE_SIZE: i64 = 10;
pub const MAX_PAGE_SIZE: i64 = 50;
const MAX_FILTER_CHARS: usize = 200;

/// The raw list parameters, as received.
#[derive(Default)]
pub struct ListParams {
    pub page_number: Option<i64>,
    pub page_size: Option<i64>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub status: Option<NotificationStatus>,
    pub notification_type: Option<NotificationType>,
    pub priority: Option<Priority>,
    pub unread_only: Option<bool>,
    pub broadcast_id: Option<Uuid>,
    pub filter: Option<String>,
    pub sort_field: Option<String>,
    pub sort_order: Option<String>,
}

/// A validated list request.
pub struct ListRequest {
    pub filter: ListFilter,
    pub page_number: i64,
    pub page_size: i64,
}

impl ListRequest {
    pub fn offset(&self) -> i64 {
        (self.page_number - 1).saturating_mul(self.page_size)
    }

    pub fn page(&self, data: Vec<Notification>, total: i64) -> NotificationPage {
        let total_pages = (total + self.page_size - 1) / self.page_size;
        NotificationPage {
            data,
            page_number: self.page_number,
            page_size: self.page_size,
            total_count: total,
            total_records: total,
            total_pages,
            has_previous_page: self.page_number > 1,
            has_next_page: self.page_number < total_pages,
        }
    }
}

/// Checks every parameter, reporting all problems at once (out-of-range sizes are refused,
/// never silently clamped).
pub fn validate(
    params: ListParams,
    user_id: Option<String>,
    hide_undelivered: bool,
) -> Result<ListRequest, FieldErrors> {
    let mut errors = FieldErrors::new();
    let page_number = params.page_number.unwrap_or(1);
    if page_number < 1 {
        errors.add("pageNumber", "The pageNumber must be 1 or more.");
    }
    let page_size = params.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        errors.add(
            "pageSize",
            format!("The pageSize must be between 1 and {MAX_PAGE_SIZE}."),
        );
    }
    if let (Some(after), Some(before)) = (params.created_after, params.created_before)
        && after >= before
    {
        errors.add(
            "createdBefore",
            "The createdBefore time must be later than createdAfter.",
        );
    }
    let text = params.filter.filter(|text| !text.trim().is_empty());
    if text
        .as_ref()
        .is_some_and(|t| t.chars().count() > MAX_FILTER_CHARS)
    {
        errors.add(
            "filter",
            format!("The filter must be at most {MAX_FILTER_CHARS} characters."),
        );
    }
    let sort = match params
        .sort_field
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("createdat") => SortField::CreatedAt,
        Some("priority") => SortField::Priority,
        Some("subject") => SortField::Subject,
        Some(_) => {
            errors.add(
                "sortField",
                "The sortField must be createdAt, priority or subject.",
            );
            SortField::CreatedAt
        }
    };
    let ascending = match params
        .sort_order
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => {
            errors.add("sortOrder", "The sortOrder must be asc or desc.");
            false
        }
    };
    errors.into_result(ListRequest {
        filter: ListFilter {
            user_id,
            hide_undelivered,
            created_after: params.created_after,
            created_before: params.created_before,
            status: params.status.map(Into::into),
            notification_type: params.notification_type.map(Into::into),
            priority: params.priority.map(Into::into),
            unread_only: params.unread_only.unwrap_or(false),
            broadcast_id: params.broadcast_id,
            text,
            sort,
            ascending,
        },
        page_number,
        page_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(page_number: i64, page_size: i64) -> ListRequest {
        validate(
            ListParams {
                page_number: Some(page_number),
                page_size: Some(page_size),
                ..Default::default()
            },
            None,
            false,
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn page_flags_follow_the_arithmetic() {
        let pages: Vec<_> = (1..=4).map(|n| request(n, 10).page(vec![], 25)).collect();
        assert_eq!(pages[0].total_pages, 3);
        assert_eq!(
            pages
                .iter()
                .map(|p| (p.has_previous_page, p.has_next_page))
                .collect::<Vec<_>>(),
            [(false, true), (true, true), (true, false), (true, false)]
        );
        assert_eq!(request(3, 10).offset(), 20);
        assert_eq!(request(1, 10).page(vec![], 0).total_pages, 0);
    }

    #[test]
    fn out_of_range_parameters_are_refused_not_clamped() {
        let errors = validate(
            ListParams {
                page_number: Some(0),
                page_size: Some(51),
                sort_field: Some("colour".into()),
                sort_order: Some("sideways".into()),
                ..Default::default()
            },
            None,
            false,
        )
        .err()
        .unwrap();
        let fields: Vec<_> = errors.fields().keys().cloned().collect();
        assert_eq!(fields, ["pageNumber", "pageSize", "sortField", "sortOrder"]);
    }
}
