//! Decoding that is strict only where we use the value: a field the daemon never reads
//! (a block's parent, who created a page) may be odd in a real response without making
//! the whole object fail. An odd value becomes `None`, is logged at debug level and
//! counted in `notion_decode_oddities_total{field}`.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A field decoded leniently, named for the log line and the metric.
pub(crate) trait Field {
    const NAME: &'static str;
}

/// Deserializes `T`, or `None` (logged and counted) when the value does not fit.
pub(crate) fn or_none<'de, D, T, F>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
    F: Field,
{
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(match value {
        None | Some(Value::Null) => None,
        Some(v) => match serde_json::from_value::<T>(v) {
            Ok(t) => Some(t),
            Err(e) => {
                oddity(F::NAME, &e);
                None
            }
        },
    })
}

fn oddity(field: &'static str, e: &serde_json::Error) {
    metrics::counter!("notion_decode_oddities_total", "field" => field).increment(1);
    tracing::debug!(field, error = %e, "ignored an odd value in a field the daemon does not use");
}

macro_rules! lenient_fields {
    ($($ty:ident = $name:literal),* $(,)?) => {
        $(
            #[doc = concat!("`", $name, "`, decoded leniently.")]
            pub(crate) struct $ty;
            impl Field for $ty {
                const NAME: &'static str = $name;
            }
        )*
    };
}

lenient_fields! {
    BlockParent = "block.parent",
    BlockCreatedTime = "block.created_time",
    BlockCreatedBy = "block.created_by",
    BlockLastEditedBy = "block.last_edited_by",
    PageCreatedBy = "page.created_by",
    PageLastEditedBy = "page.last_edited_by",
}
