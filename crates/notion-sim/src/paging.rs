//! The `page_size` / `start_cursor` query parameters of Notion's GET list endpoints,
//! validated with Notion's messages.

use crate::error::ApiError;

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
