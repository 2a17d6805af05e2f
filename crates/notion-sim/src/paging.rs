//! The `page_size` / `start_cursor` query parameters of Notion's GET list endpoints,
//! validated with Notion's messages, and the window of a list whose cursor is the id of
//! its next item.

use crate::error::ApiError;
use crate::model::normalize_id;

/// `page_size` (1–100, default 100) and `start_cursor` from percent-decoded pairs.
pub(crate) fn page_params(pairs: &[(String, String)]) -> Result<(usize, Option<String>), ApiError> {
    let mut page_size = 100usize;
    let mut start_cursor = None;
    for (k, v) in pairs {
        match k.as_str() {
            "page_size" => {
                let n: i64 = v.parse().map_err(|_| {
                    ApiError::validation(format!(
                        "query failed validation: query.page_size should be a number, instead was `\"{v}\"`."
                    ))
                })?;
                if !(1..=100).contains(&n) {
                    let bound = if n < 1 { "≥ `1`" } else { "≤ `100`" };
                    return Err(ApiError::validation(format!(
                        "query failed validation: query.page_size should be {bound}, instead was `{n}`."
                    )));
                }
                page_size = usize::try_from(n).unwrap_or(100);
            }
            "start_cursor" => start_cursor = Some(v.clone()),
            _ => {}
        }
    }
    Ok((page_size, start_cursor))
}

/// The items of one page of `items` starting at the one whose id is `start_cursor`,
/// and the next cursor (the id of the item after the page).
pub(crate) fn window<'a, T>(
    items: &'a [T],
    page_size: usize,
    start_cursor: Option<&str>,
    id: impl Fn(&T) -> &str,
) -> Result<(&'a [T], Option<String>), ApiError> {
    let start = match start_cursor {
        None => 0,
        Some(c) => {
            let c_norm = normalize_id(c).unwrap_or_default();
            items.iter().position(|t| id(t) == c_norm).ok_or_else(|| {
                ApiError::validation(format!("start_cursor provided is invalid: {c}"))
            })?
        }
    };
    let end = (start + page_size).min(items.len());
    Ok((&items[start..end], items.get(end).map(|t| id(t).to_owned())))
}
