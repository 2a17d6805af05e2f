//! Rich text segments (`text`, `mention`, `equation`) and their annotations.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Styling of a rich text segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Annotations {
    /// Bold.
    pub bold: bool,
    /// Italic.
    pub italic: bool,
    /// Strikethrough.
    pub strikethrough: bool,
    /// Underline (ignored by the Markdown renderer).
    pub underline: bool,
    /// Inline code.
    pub code: bool,
    /// Colour name, `default` when unset.
    pub color: String,
}

impl Default for Annotations {
    fn default() -> Self {
        Self {
            bold: false,
            italic: false,
            strikethrough: false,
            underline: false,
            code: false,
            color: String::from("default"),
        }
    }
}

/// What a segment is, with its type-specific data.
#[derive(Debug, Clone, PartialEq)]
pub enum RichTextContent {
    /// Plain text, optionally linked.
    Text {
        /// The text.
        content: String,
        /// `text.link.url`.
        link: Option<String>,
    },
    /// A mention of a user, page, database, date …; the object as Notion sent it.
    Mention(Value),
    /// An inline KaTeX equation.
    Equation {
        /// The expression.
        expression: String,
    },
    /// A segment type this crate does not model.
    Unknown {
        /// The `type` string.
        kind: String,
        /// The type-specific object.
        raw: Value,
    },
}

/// One segment of Notion rich text.
#[derive(Debug, Clone, PartialEq)]
pub struct RichText {
    /// The text without styling (what Notion displays).
    pub plain_text: String,
    /// Link target, for links and most mentions.
    pub href: Option<String>,
    /// Styling.
    pub annotations: Annotations,
    /// The type and its data.
    pub content: RichTextContent,
}

impl RichText {
    /// An unstyled text segment.
    pub fn plain(text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            plain_text: text.clone(),
            href: None,
            annotations: Annotations::default(),
            content: RichTextContent::Text {
                content: text,
                link: None,
            },
        }
    }

    /// The segment's link: `text.link.url`, else `href`.
    pub fn link(&self) -> Option<&str> {
        match &self.content {
            RichTextContent::Text {
                link: Some(url), ..
            } => Some(url),
            _ => self.href.as_deref(),
        }
    }

    /// The `type` string.
    pub fn kind(&self) -> &str {
        match &self.content {
            RichTextContent::Text { .. } => "text",
            RichTextContent::Mention(_) => "mention",
            RichTextContent::Equation { .. } => "equation",
            RichTextContent::Unknown { kind, .. } => kind,
        }
    }
}

/// Concatenated `plain_text` of all segments.
pub fn plain_text(segments: &[RichText]) -> String {
    segments.iter().map(|s| s.plain_text.as_str()).collect()
}

#[derive(Deserialize, Serialize)]
struct LinkWire {
    url: String,
}

#[derive(Deserialize, Serialize)]
struct TextWire {
    content: String,
    #[serde(default)]
    link: Option<LinkWire>,
}

#[derive(Deserialize, Serialize)]
struct EquationWire {
    expression: String,
}

#[derive(Deserialize)]
struct RichTextWire {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    text: Option<TextWire>,
    #[serde(default)]
    mention: Option<Value>,
    #[serde(default)]
    equation: Option<EquationWire>,
    #[serde(default)]
    annotations: Option<Annotations>,
    #[serde(default)]
    plain_text: Option<String>,
    #[serde(default)]
    href: Option<String>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

impl<'de> Deserialize<'de> for RichText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut w = RichTextWire::deserialize(deserializer)?;
        let kind = match w.kind.take() {
            Some(k) => k,
            // Request-shaped segments omit `type`; infer it from the payload key.
            None if w.text.is_some() => "text".to_owned(),
            None if w.mention.is_some() => "mention".to_owned(),
            None if w.equation.is_some() => "equation".to_owned(),
            None => return Err(D::Error::missing_field("type")),
        };
        let content = match kind.as_str() {
            "text" => {
                let t = w
                    .text
                    .take()
                    .ok_or_else(|| D::Error::missing_field("text"))?;
                RichTextContent::Text {
                    content: t.content,
                    link: t.link.map(|l| l.url),
                }
            }
            "mention" => RichTextContent::Mention(
                w.mention
                    .take()
                    .ok_or_else(|| D::Error::missing_field("mention"))?,
            ),
            "equation" => RichTextContent::Equation {
                expression: w
                    .equation
                    .take()
                    .ok_or_else(|| D::Error::missing_field("equation"))?
                    .expression,
            },
            _ => RichTextContent::Unknown {
                raw: w.rest.remove(&kind).unwrap_or(Value::Null),
                kind,
            },
        };
        let plain_text = match w.plain_text {
            Some(p) => p,
            None => match &content {
                RichTextContent::Text { content, .. } => content.clone(),
                RichTextContent::Equation { expression } => expression.clone(),
                _ => String::new(),
            },
        };
        Ok(Self {
            plain_text,
            href: w.href,
            annotations: w.annotations.unwrap_or_default(),
            content,
        })
    }
}

impl Serialize for RichText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = serializer.serialize_map(Some(5))?;
        m.serialize_entry("type", self.kind())?;
        match &self.content {
            RichTextContent::Text { content, link } => m.serialize_entry(
                "text",
                &TextWire {
                    content: content.clone(),
                    link: link.clone().map(|url| LinkWire { url }),
                },
            )?,
            RichTextContent::Mention(v) => m.serialize_entry("mention", v)?,
            RichTextContent::Equation { expression } => m.serialize_entry(
                "equation",
                &EquationWire {
                    expression: expression.clone(),
                },
            )?,
            RichTextContent::Unknown { kind, raw } => m.serialize_entry(kind, raw)?,
        }
        m.serialize_entry("annotations", &self.annotations)?;
        m.serialize_entry("plain_text", &self.plain_text)?;
        m.serialize_entry("href", &self.href)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_mention_equation_and_unknown() {
        let v = json!([
            {"type":"text","text":{"content":"a","link":{"url":"https://x"}},
             "annotations":{"bold":true,"italic":false,"strikethrough":false,"underline":false,"code":false,"color":"default"},
             "plain_text":"a","href":"https://x"},
            {"type":"mention","mention":{"type":"user","user":{"object":"user","id":"7775f3a3-893f-43fa-b625-460c61094c78"}},
             "annotations":{"bold":false,"italic":false,"strikethrough":false,"underline":false,"code":false,"color":"default"},
             "plain_text":"@Ann","href":null},
            {"type":"equation","equation":{"expression":"e=mc^2"},
             "annotations":{"bold":false,"italic":false,"strikethrough":false,"underline":false,"code":false,"color":"default"},
             "plain_text":"e=mc^2","href":null},
            {"type":"sparkle","sparkle":{"x":1},"plain_text":"*","href":null}
        ]);
        let segs: Vec<RichText> = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(plain_text(&segs), "a@Anne=mc^2*");
        assert_eq!(segs[0].link(), Some("https://x"));
        assert!(segs[0].annotations.bold);
        assert!(matches!(segs[1].content, RichTextContent::Mention(_)));
        assert_eq!(segs[3].kind(), "sparkle");
        // typed round trip
        let again: Vec<RichText> =
            serde_json::from_value(serde_json::to_value(&segs).unwrap()).unwrap();
        assert_eq!(again, segs);
        // documented shapes re-serialize to the same JSON
        assert_eq!(
            serde_json::to_value(&segs[..3]).unwrap(),
            json!(v.as_array().unwrap()[..3])
        );
    }
}
