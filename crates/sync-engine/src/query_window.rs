//! Reading a data source query past Notion's per-query result limit (10,000 results, then
//! `has_more: false` with `request_status: incomplete`): the next request of a query
//! sorted by `last_edited_time` ascending from a lower bound. Past the limit a new query
//! starts at the last row's `last_edited_time` (that minute's rows come again; mirroring
//! them twice changes nothing). When one minute of `last_edited_time` holds more than the
//! limit (a bulk edit of over 10,000 pages), that minute is read in windows of
//! `created_time`, then the query goes on after it.

use chrono::{DateTime, TimeDelta, Utc};
use notion_api::{Direction, Filter, ListResponse, Page, QueryRequest, Sort};

/// What to do after one page of the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Read the next cursor page (the request now carries its cursor).
    Page,
    /// A new query from this instant (the request now says so).
    Window(DateTime<Utc>),
    /// Every row was returned.
    Done,
    /// More pages than the limit share one minute of `last_edited_time` and one of
    /// `created_time`: no query of this shape can go further.
    Stuck(Option<DateTime<Utc>>),
}

/// Where a windowed query is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// The `last_edited_time` lower bound of the current query.
    lower: Option<DateTime<Utc>>,
    /// Reading one crowded minute by `created_time`: (that minute, created lower bound).
    crowded: Option<(DateTime<Utc>, Option<DateTime<Utc>>)>,
}

impl Window {
    /// A query whose filter is `last_edited_time ≥ lower` (or none).
    pub(crate) fn from(lower: Option<DateTime<Utc>>) -> Window {
        Window {
            lower,
            crowded: None,
        }
    }

    /// Advances `request` after `list`.
    pub(crate) fn advance(
        &mut self,
        request: &mut QueryRequest,
        list: &ListResponse<Page>,
    ) -> Next {
        if let (true, Some(cursor)) = (list.has_more, &list.next_cursor) {
            request.start_cursor = Some(cursor.clone());
            return Next::Page;
        }
        request.start_cursor = None;
        let last = list.results.last();
        match (self.crowded, list.is_incomplete()) {
            (None, false) => Next::Done,
            // The crowded minute is read: on with the minutes after it.
            (Some((minute, _)), false) => {
                let after = minute + TimeDelta::minutes(1);
                self.lower = Some(after);
                self.crowded = None;
                request.filter = Some(Filter::last_edited_time().on_or_after(after));
                request.sorts = vec![Sort::last_edited_time(Direction::Ascending)];
                Next::Window(after)
            }
            (None, true) => match last.map(|p| p.last_edited_time) {
                Some(t) if self.lower != Some(t) => {
                    self.lower = Some(t);
                    request.filter = Some(Filter::last_edited_time().on_or_after(t));
                    Next::Window(t)
                }
                Some(t) => {
                    self.crowded = Some((t, None));
                    request.filter = Some(crowded_filter(t, None));
                    request.sorts = vec![Sort::created_time(Direction::Ascending)];
                    Next::Window(t)
                }
                None => Next::Stuck(None),
            },
            (Some((minute, created)), true) => match last.map(|p| p.created_time) {
                Some(c) if created != Some(c) => {
                    self.crowded = Some((minute, Some(c)));
                    request.filter = Some(crowded_filter(minute, Some(c)));
                    Next::Window(minute)
                }
                _ => Next::Stuck(Some(minute)),
            },
        }
    }
}

/// The pages last edited in `minute`, created at or after `created` (if given).
fn crowded_filter(minute: DateTime<Utc>, created: Option<DateTime<Utc>>) -> Filter {
    let mut all = vec![
        Filter::last_edited_time().on_or_after(minute),
        Filter::last_edited_time().before(minute + TimeDelta::minutes(1)),
    ];
    if let Some(c) = created {
        all.push(Filter::created_time().on_or_after(c));
    }
    Filter::and(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_edited(at: &str) -> Page {
        page_at(at, "2026-11-01T00:00:00.000Z")
    }

    fn page_at(at: &str, created: &str) -> Page {
        serde_json::from_value(serde_json::json!({
            "object": "page", "id": "59833787-2cf9-4fdf-8782-e53db20768a5",
            "created_time": created, "last_edited_time": at,
            "parent": {"type": "data_source_id", "data_source_id": "b60836aa-3494-4d68-a216-f9a4905c8775"},
            "in_trash": false, "archived": false, "properties": {}, "url": "https://www.notion.so/x"
        }))
        .unwrap()
    }

    fn list(rows: &[&str], more: bool, incomplete: bool) -> ListResponse<Page> {
        let pages = rows.iter().map(|r| page_edited(r)).collect();
        list_of(pages, more, incomplete)
    }

    fn list_of(pages: Vec<Page>, more: bool, incomplete: bool) -> ListResponse<Page> {
        let status = incomplete.then(|| notion_api::RequestStatus {
            kind: "incomplete".into(),
            incomplete_reason: Some("query_result_limit_reached".into()),
        });
        ListResponse {
            results: pages,
            next_cursor: more.then(|| "c1".to_owned()),
            has_more: more,
            request_status: status,
        }
    }

    #[test]
    fn the_limit_starts_new_windows_and_a_crowded_minute_is_read_by_creation() {
        let mut request = QueryRequest::default();
        let mut w = Window::from(None);
        let t1 = "2026-11-02T10:01:00.000Z";
        let at: DateTime<Utc> = t1.parse().unwrap();
        assert_eq!(
            w.advance(&mut request, &list(&[t1], true, false)),
            Next::Page
        );
        assert_eq!(request.start_cursor.as_deref(), Some("c1"));
        assert_eq!(
            w.advance(&mut request, &list(&[t1], false, false)),
            Next::Done
        );
        assert_eq!(
            w.advance(&mut request, &list(&[t1], false, true)),
            Next::Window(at)
        );
        assert!(request.start_cursor.is_none());
        // The same minute again: read it by created_time.
        assert_eq!(
            w.advance(&mut request, &list(&[t1], false, true)),
            Next::Window(at)
        );
        let text = serde_json::to_string(&request.filter).unwrap();
        assert!(
            text.contains("created_time") || text.contains("before"),
            "{text}"
        );
        let c1 = "2026-10-01T08:00:00.000Z";
        assert_eq!(
            w.advance(&mut request, &list_of(vec![page_at(t1, c1)], false, true)),
            Next::Window(at)
        );
        assert_eq!(
            w.advance(&mut request, &list_of(vec![page_at(t1, c1)], false, true)),
            Next::Stuck(Some(at)),
            "one minute of edits and one of creation hold the limit"
        );
        let mut w = Window::from(Some(at));
        w.advance(&mut request, &list(&[t1], false, true));
        assert_eq!(
            w.advance(&mut request, &list(&[t1], false, false)),
            Next::Window(at + TimeDelta::minutes(1)),
            "the crowded minute read, on with the next"
        );
        assert_eq!(
            w.advance(&mut request, &list(&[], false, false)),
            Next::Done
        );
    }
}
