//! `parent` objects: where a page, block, data source or database lives.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::NotionId;

/// The parent of a page, block, data source or database.
#[derive(Debug, Clone, PartialEq)]
pub enum Parent {
    /// A row of a data source (2025-09-03); `database_id` is included by Notion.
    DataSource {
        /// The data source.
        data_source_id: NotionId,
        /// Its database, when given.
        database_id: Option<NotionId>,
    },
    /// A database (data sources have this parent; older pages too).
    Database {
        /// The database.
        database_id: NotionId,
    },
    /// A page.
    Page {
        /// The page.
        page_id: NotionId,
    },
    /// A block.
    Block {
        /// The block.
        block_id: NotionId,
    },
    /// The workspace top level.
    Workspace,
    /// A parent type this crate does not know, as sent.
    Unknown(Value),
}

impl Parent {
    /// The data source id, for data source rows.
    pub fn data_source_id(&self) -> Option<NotionId> {
        match self {
            Self::DataSource { data_source_id, .. } => Some(*data_source_id),
            _ => None,
        }
    }

    /// The database id, for data source rows (when given) and database children.
    pub fn database_id(&self) -> Option<NotionId> {
        match self {
            Self::DataSource { database_id, .. } => *database_id,
            Self::Database { database_id } => Some(*database_id),
            _ => None,
        }
    }

    /// The JSON Notion uses for this parent.
    pub fn to_json(&self) -> Value {
        match self {
            Self::DataSource {
                data_source_id,
                database_id,
            } => {
                let mut v = json!({"type": "data_source_id", "data_source_id": data_source_id});
                if let Some(db) = database_id {
                    v["database_id"] = json!(db);
                }
                v
            }
            Self::Database { database_id } => {
                json!({"type": "database_id", "database_id": database_id})
            }
            Self::Page { page_id } => json!({"type": "page_id", "page_id": page_id}),
            Self::Block { block_id } => json!({"type": "block_id", "block_id": block_id}),
            Self::Workspace => json!({"type": "workspace", "workspace": true}),
            Self::Unknown(v) => v.clone(),
        }
    }
}

fn id_field(map: &Map<String, Value>, key: &str) -> Option<Result<NotionId, String>> {
    let v = map.get(key)?;
    Some(match v.as_str() {
        Some(s) => NotionId::parse(s).map_err(|e| format!("parent.{key}: {e}")),
        None => Err(format!("parent.{key}: expected a string")),
    })
}

impl<'de> Deserialize<'de> for Parent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let map = Map::<String, Value>::deserialize(deserializer)?;
        // Request-shaped parents omit `type`; infer it from the id key.
        let kind = match map.get("type").and_then(Value::as_str) {
            Some(k) => k.to_owned(),
            None => ["data_source_id", "database_id", "page_id", "block_id"]
                .into_iter()
                .find(|k| map.contains_key(*k))
                .unwrap_or("")
                .to_owned(),
        };
        let need = |key: &str| -> Result<NotionId, D::Error> {
            id_field(&map, key)
                .unwrap_or_else(|| Err(format!("missing field `{key}` in parent")))
                .map_err(D::Error::custom)
        };
        Ok(match kind.as_str() {
            "data_source_id" => Self::DataSource {
                data_source_id: need("data_source_id")?,
                database_id: id_field(&map, "database_id")
                    .transpose()
                    .map_err(D::Error::custom)?,
            },
            "database_id" => Self::Database {
                database_id: need("database_id")?,
            },
            "page_id" => Self::Page {
                page_id: need("page_id")?,
            },
            "block_id" => Self::Block {
                block_id: need("block_id")?,
            },
            "workspace" => Self::Workspace,
            _ => Self::Unknown(Value::Object(map)),
        })
    }
}

impl Serialize for Parent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind() {
        let ds: Parent = serde_json::from_value(json!({"type":"data_source_id",
            "data_source_id":"1a44be12-0953-4631-b498-9e5817518db8",
            "database_id":"daf41515aa5f4d1497a89193425ec491"}))
        .unwrap();
        assert_eq!(
            ds.data_source_id().unwrap().to_string(),
            "1a44be12-0953-4631-b498-9e5817518db8"
        );
        assert!(ds.database_id().is_some());
        let p: Parent =
            serde_json::from_value(json!({"page_id":"393abc1eedcd80f3813be205934558c6"})).unwrap();
        assert!(matches!(p, Parent::Page { .. }));
        let w: Parent =
            serde_json::from_value(json!({"type":"workspace","workspace":true})).unwrap();
        assert_eq!(w, Parent::Workspace);
        let u: Parent = serde_json::from_value(json!({"type":"space","id":"x"})).unwrap();
        assert!(matches!(u, Parent::Unknown(_)));
        for p in [ds, p, w, u] {
            let again: Parent = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
            assert_eq!(again, p);
        }
        assert!(serde_json::from_value::<Parent>(json!({"type":"page_id"})).is_err());
    }
}
