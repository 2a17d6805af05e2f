//! Users: the partial `{object, id}` references and full user objects.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::NotionId;

/// A user reference as it appears in `created_by` / `last_edited_by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartialUser {
    /// The user's id.
    pub id: NotionId,
}

#[derive(Serialize, Deserialize)]
struct PartialUserWire {
    #[serde(default = "user_object")]
    object: String,
    id: NotionId,
}

fn user_object() -> String {
    String::from("user")
}

impl<'de> Deserialize<'de> for PartialUser {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let w = PartialUserWire::deserialize(deserializer)?;
        Ok(Self { id: w.id })
    }
}

impl Serialize for PartialUser {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PartialUserWire {
            object: user_object(),
            id: self.id,
        }
        .serialize(serializer)
    }
}

/// Whether a user is a person or a bot (integration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserKind {
    /// A human member or guest.
    Person,
    /// An integration.
    Bot,
    /// Not stated (partial user) or a type this crate does not know.
    Unknown,
}

/// A user object (`GET /v1/users/me`, people properties, `created_by` …).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The user's id.
    pub id: NotionId,
    /// Display name, when Notion includes it.
    pub name: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Person or bot.
    pub kind: UserKind,
    /// `person.email` (needs the user-information capability).
    pub email: Option<String>,
    /// The `bot` object for bots (owner, `workspace_name` …), as sent.
    pub bot: Option<Value>,
}

impl User {
    /// `bot.workspace_name`, for the token's own bot user.
    pub fn workspace_name(&self) -> Option<&str> {
        self.bot.as_ref()?.get("workspace_name")?.as_str()
    }
}

#[derive(Serialize, Deserialize)]
struct PersonWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

#[derive(Deserialize)]
struct UserWire {
    id: NotionId,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    avatar_url: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    person: Option<PersonWire>,
    #[serde(default)]
    bot: Option<Value>,
}

impl<'de> Deserialize<'de> for User {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let w = UserWire::deserialize(deserializer)?;
        let kind = match w.kind.as_deref() {
            Some("person") => UserKind::Person,
            Some("bot") => UserKind::Bot,
            _ => UserKind::Unknown,
        };
        Ok(Self {
            id: w.id,
            name: w.name,
            avatar_url: w.avatar_url,
            kind,
            email: w.person.and_then(|p| p.email),
            bot: w.bot,
        })
    }
}

impl Serialize for User {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("object", "user")?;
        m.serialize_entry("id", &self.id)?;
        let kind = match self.kind {
            UserKind::Person => Some("person"),
            UserKind::Bot => Some("bot"),
            UserKind::Unknown => None,
        };
        if let Some(kind) = kind {
            // Full user objects carry name and avatar_url even when null.
            m.serialize_entry("name", &self.name)?;
            m.serialize_entry("avatar_url", &self.avatar_url)?;
            m.serialize_entry("type", kind)?;
            match self.kind {
                UserKind::Person => m.serialize_entry(
                    "person",
                    &PersonWire {
                        email: self.email.clone(),
                    },
                )?,
                _ => m.serialize_entry("bot", self.bot.as_ref().unwrap_or(&Value::Null))?,
            }
        } else {
            if let Some(n) = &self.name {
                m.serialize_entry("name", n)?;
            }
            if let Some(a) = &self.avatar_url {
                m.serialize_entry("avatar_url", a)?;
            }
        }
        m.end()
    }
}
