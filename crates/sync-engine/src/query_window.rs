//! Reading a data source query past Notion's per-query result limit (10,000 results, then
//! `has_more: false` with `request_status: incomplete`): the next request of a query
//! sorted by `last_edited_time` ascending from a lower bound. Past the limit a new query
//! starts at the last row's `last_edited_time` (that minute's rows come again; mirroring
//! them twice changes nothing).

use chrono::{DateTime, Utc};
use notion_api::{Filter, ListResponse, Page, QueryRequest};

/// What to do after one page of the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Read the next cursor page (the request now carries its cursor).
    Page,
    /// The limit was reached: a new query from this minute (the request now says so).
    Window(DateTime<Utc>),
    /// Every row was returned.
    Done,
    /// The limit was reached within one minute of `last_edited_time`: this way of
    /// querying cannot go further.
    Stuck(Option<DateTime<Utc>>),
}

/// Advances `request` after `list`; `lower` is the query's current lower bound.
pub(crate) fn advance(
    request: &mut QueryRequest,
    list: &ListResponse<Page>,
    lower: &mut Option<DateTime<Utc>>,
) -> Next {
    if let (true, Some(cursor)) = (list.has_more, &list.next_cursor) {
        request.start_cursor = Some(cursor.clone());
        return Next::Page;
    }
    if !list.is_incomplete() {
        return Next::Done;
    }
    let last = list.results.last().map(|p| p.last_edited_time);
    match last {
        Some(t) if *lower != Some(t) => {
            *lower = Some(t);
            request.filter = Some(Filter::last_edited_time().on_or_after(t));
            request.start_cursor = None;
            Next::Window(t)
        }
        _ => Next::Stuck(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_edited(at: &str) -> Page {
        serde_json::from_value(serde_json::json!({
            "object": "page", "id": "59833787-2cf9-4fdf-8782-e53db20768a5",
            "created_time": "2026-11-01T00:00:00.000Z", "last_edited_time": at,
            "parent": {"type": "data_source_id", "data_source_id": "b60836aa-3494-4d68-a216-f9a4905c8775"},
            "in_trash": false, "archived": false, "properties": {}, "url": "https://www.notion.so/x"
        }))
        .unwrap()
    }

    fn list(rows: &[&str], more: bool, incomplete: bool) -> ListResponse<Page> {
        let status = incomplete.then(|| notion_api::RequestStatus {
            kind: "incomplete".into(),
            incomplete_reason: Some("query_result_limit_reached".into()),
        });
        ListResponse {
            results: rows.iter().map(|r| page_edited(r)).collect(),
            next_cursor: more.then(|| "c1".to_owned()),
            has_more: more,
            request_status: status,
        }
    }

    #[test]
    fn the_limit_starts_a_new_window_until_one_minute_holds_it() {
        let mut request = QueryRequest::default();
        let mut lower = None;
        let t1 = "2026-11-02T10:01:00.000Z";
        assert_eq!(
            advance(&mut request, &list(&[t1], true, false), &mut lower),
            Next::Page
        );
        assert_eq!(request.start_cursor.as_deref(), Some("c1"));
        assert_eq!(
            advance(&mut request, &list(&[t1], false, false), &mut lower),
            Next::Done
        );
        let at: DateTime<Utc> = t1.parse().unwrap();
        assert_eq!(
            advance(&mut request, &list(&[t1], false, true), &mut lower),
            Next::Window(at)
        );
        assert!(request.start_cursor.is_none());
        assert!(request.filter.is_some());
        assert_eq!(
            advance(&mut request, &list(&[t1], false, true), &mut lower),
            Next::Stuck(Some(at)),
            "the same minute again: no progress"
        );
    }
}
