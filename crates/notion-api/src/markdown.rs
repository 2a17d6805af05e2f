//! Page bodies as Markdown: the markdown endpoint's answer and the block-tree fallback renderer.
//!
//! [`render_markdown`] implements the project's shared rendering spec
//! (notion-sim's markdown endpoint implements it independently; the two must
//! agree byte for byte).

use serde::{Deserialize, Serialize};

use crate::NotionId;
use crate::models::{BlockContent, BlockNode, RichText, plain_text};

/// `GET /v1/pages/{id}/markdown` (Notion-Version 2026-03-11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageMarkdown {
    /// The page (or block) id.
    pub id: NotionId,
    /// The body as Notion's enhanced Markdown.
    pub markdown: String,
    /// True when the page exceeded the block limit; fall back to blocks.
    #[serde(default)]
    pub truncated: bool,
    /// Blocks that could not be rendered.
    #[serde(default)]
    pub unknown_block_ids: Vec<NotionId>,
}

/// Renders rich text: per segment `code`, then bold, italic, strikethrough,
/// then the link; underline and colour are ignored.
pub fn render_rich_text(segments: &[RichText]) -> String {
    let mut out = String::new();
    for s in segments {
        let mut x = s.plain_text.clone();
        let a = &s.annotations;
        if a.code {
            x = format!("`{x}`");
        }
        if a.bold {
            x = format!("**{x}**");
        }
        if a.italic {
            x = format!("*{x}*");
        }
        if a.strikethrough {
            x = format!("~~{x}~~");
        }
        if let Some(url) = s.link() {
            x = format!("[{x}]({url})");
        }
        out.push_str(&x);
    }
    out
}

fn indent_into(out: &mut String, rendered: &str) {
    for line in rendered.split('\n') {
        out.push('\n');
        out.push('\t');
        out.push_str(line);
    }
}

fn render_children(out: &mut String, children: &[BlockNode]) {
    for child in children {
        indent_into(out, &render_node(child));
    }
}

fn render_node(node: &BlockNode) -> String {
    let mut out = match &node.block.content {
        BlockContent::Paragraph { rich_text, .. } => render_rich_text(rich_text),
        BlockContent::Heading1 { rich_text, .. } => format!("# {}", render_rich_text(rich_text)),
        BlockContent::Heading2 { rich_text, .. } => format!("## {}", render_rich_text(rich_text)),
        BlockContent::Heading3 { rich_text, .. } => format!("### {}", render_rich_text(rich_text)),
        BlockContent::BulletedListItem { rich_text, .. } => {
            format!("- {}", render_rich_text(rich_text))
        }
        BlockContent::NumberedListItem { rich_text, .. } => {
            format!("1. {}", render_rich_text(rich_text))
        }
        BlockContent::ToDo {
            rich_text, checked, ..
        } => format!(
            "- [{}] {}",
            if *checked { 'x' } else { ' ' },
            render_rich_text(rich_text)
        ),
        BlockContent::Quote { rich_text, .. } => format!("> {}", render_rich_text(rich_text)),
        BlockContent::Callout { rich_text, .. } => {
            format!("<callout>{}</callout>", render_rich_text(rich_text))
        }
        BlockContent::Toggle { rich_text, .. } => {
            let mut s = format!(
                "<details>\n<summary>{}</summary>",
                render_rich_text(rich_text)
            );
            render_children(&mut s, &node.children);
            s.push_str("\n</details>");
            return s;
        }
        BlockContent::Code {
            rich_text,
            language,
            ..
        } => {
            let lang = if language == "plain text" {
                ""
            } else {
                language
            };
            format!("```{lang}\n{}\n```", plain_text(rich_text))
        }
        BlockContent::Divider => String::from("---"),
        BlockContent::ChildPage { title } => format!("<page>{title}</page>"),
        BlockContent::ChildDatabase { title } => format!("<database>{title}</database>"),
        BlockContent::Unknown { block_type, .. } => format!("<unknown type=\"{block_type}\"/>"),
    };
    render_children(&mut out, &node.children);
    out
}

/// Renders a page body (its top-level blocks with fetched children) as
/// Markdown: one block per line group, joined with `\n`, children indented
/// by one tab per level, no trailing newline; an empty body is `""`.
pub fn render_markdown(blocks: &[BlockNode]) -> String {
    blocks
        .iter()
        .map(render_node)
        .collect::<Vec<_>>()
        .join("\n")
}
