//! The project's Markdown rendering of Notion blocks (the shared spec, implemented independently
//! of notion-api's fallback renderer so the two can be checked against each other).

use crate::model::{Block, BlockKind, Segment};

/// Renders rich text: per segment code, bold, italic, strikethrough (innermost first), then link.
pub(crate) fn rich_text(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        let mut x = s.text.clone();
        if s.code {
            x = format!("`{x}`");
        }
        if s.bold {
            x = format!("**{x}**");
        }
        if s.italic {
            x = format!("*{x}*");
        }
        if s.strikethrough {
            x = format!("~~{x}~~");
        }
        if let Some(url) = &s.link {
            x = format!("[{x}]({url})");
        }
        out.push_str(&x);
    }
    out
}

/// Result of rendering with a block budget.
#[derive(Debug, PartialEq)]
pub(crate) struct Rendered {
    pub markdown: String,
    pub truncated: bool,
    /// Roots of the subtrees that were not rendered.
    pub unknown_block_ids: Vec<String>,
}

/// Renders a whole body without a limit.
pub(crate) fn render(blocks: &[Block]) -> String {
    render_limited(blocks, usize::MAX).markdown
}

/// Renders at most `limit` blocks (pre-order); the rest are reported as unknown.
pub(crate) fn render_limited(blocks: &[Block], limit: usize) -> Rendered {
    let mut r = Renderer {
        lines: Vec::new(),
        budget: limit,
        unknown: Vec::new(),
    };
    r.blocks(blocks, 0);
    Rendered {
        markdown: r.lines.join("\n"),
        truncated: !r.unknown.is_empty(),
        unknown_block_ids: r.unknown,
    }
}

struct Renderer {
    lines: Vec<String>,
    budget: usize,
    unknown: Vec<String>,
}

impl Renderer {
    fn push(&mut self, depth: usize, text: &str) {
        let prefix = "\t".repeat(depth);
        for line in text.split('\n') {
            self.lines.push(format!("{prefix}{line}"));
        }
    }

    fn blocks(&mut self, blocks: &[Block], depth: usize) {
        for b in blocks {
            if self.budget == 0 {
                self.unknown.push(b.id.clone());
                continue;
            }
            self.budget -= 1;
            self.block(b, depth);
        }
    }

    fn block(&mut self, b: &Block, depth: usize) {
        let text = rich_text(&b.text);
        match &b.kind {
            BlockKind::Toggle => {
                self.push(depth, "<details>");
                self.push(depth, &format!("<summary>{text}</summary>"));
                self.blocks(&b.children, depth + 1);
                self.push(depth, "</details>");
                return;
            }
            BlockKind::Paragraph => self.push(depth, &text),
            BlockKind::Heading1 => self.push(depth, &format!("# {text}")),
            BlockKind::Heading2 => self.push(depth, &format!("## {text}")),
            BlockKind::Heading3 => self.push(depth, &format!("### {text}")),
            BlockKind::Bulleted => self.push(depth, &format!("- {text}")),
            BlockKind::Numbered => self.push(depth, &format!("1. {text}")),
            BlockKind::ToDo { checked } => {
                let mark = if *checked { "x" } else { " " };
                self.push(depth, &format!("- [{mark}] {text}"));
            }
            BlockKind::Quote => self.push(depth, &format!("> {text}")),
            BlockKind::Callout => self.push(depth, &format!("<callout>{text}</callout>")),
            BlockKind::Code { language } => {
                let lang = if language == "plain text" {
                    ""
                } else {
                    language.as_str()
                };
                let code: String = b.text.iter().map(|s| s.text.as_str()).collect();
                self.push(depth, &format!("```{lang}\n{code}\n```"));
            }
            BlockKind::Divider => self.push(depth, "---"),
        }
        self.blocks(&b.children, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn blk(id: &str, kind: BlockKind, text: &str, children: Vec<Block>) -> Block {
        Block {
            id: id.to_owned(),
            kind,
            text: if text.is_empty() {
                Vec::new()
            } else {
                vec![Segment::plain(text)]
            },
            children,
            created_time: Utc::now(),
            last_edited_time: Utc::now(),
            created_by: String::new(),
            last_edited_by: String::new(),
        }
    }

    #[test]
    fn annotations_nest_in_spec_order() {
        let mut s = Segment::plain("x");
        s.code = true;
        s.bold = true;
        s.italic = true;
        s.strikethrough = true;
        s.link = Some("https://e.x".to_owned());
        assert_eq!(rich_text(&[s]), "[~~***`x`***~~](https://e.x)");
        let mut u = Segment::plain("u");
        u.underline = true;
        u.color = "red".to_owned();
        assert_eq!(rich_text(&[Segment::plain("a "), u]), "a u");
    }

    #[test]
    fn every_block_type_and_nesting() {
        let body = vec![
            blk("1", BlockKind::Heading1, "H1", vec![]),
            blk("2", BlockKind::Heading2, "H2", vec![]),
            blk("3", BlockKind::Heading3, "H3", vec![]),
            blk("4", BlockKind::Paragraph, "para", vec![]),
            blk(
                "5",
                BlockKind::Bulleted,
                "b",
                vec![blk(
                    "6",
                    BlockKind::Numbered,
                    "n",
                    vec![blk("7", BlockKind::ToDo { checked: true }, "done", vec![])],
                )],
            ),
            blk("8", BlockKind::ToDo { checked: false }, "open", vec![]),
            blk(
                "9",
                BlockKind::Toggle,
                "more",
                vec![blk(
                    "10",
                    BlockKind::Code {
                        language: "rust".to_owned(),
                    },
                    "fn a() {}\nfn b() {}",
                    vec![],
                )],
            ),
            blk("11", BlockKind::Quote, "q", vec![]),
            blk("12", BlockKind::Callout, "c", vec![]),
            blk(
                "13",
                BlockKind::Code {
                    language: "plain text".to_owned(),
                },
                "x",
                vec![],
            ),
            blk("14", BlockKind::Divider, "", vec![]),
        ];
        let expected = "# H1\n## H2\n### H3\npara\n- b\n\t1. n\n\t\t- [x] done\n- [ ] open\n<details>\n<summary>more</summary>\n\t```rust\n\tfn a() {}\n\tfn b() {}\n\t```\n</details>\n> q\n<callout>c</callout>\n```\nx\n```\n---";
        assert_eq!(render(&body), expected);
        assert_eq!(render(&[]), "");
    }

    #[test]
    fn block_limit_truncates_and_reports_subtree_roots() {
        let body = vec![
            blk("a", BlockKind::Paragraph, "A", vec![]),
            blk(
                "b",
                BlockKind::Bulleted,
                "B",
                vec![
                    blk("c", BlockKind::Paragraph, "C", vec![]),
                    blk("d", BlockKind::Paragraph, "D", vec![]),
                ],
            ),
            blk("e", BlockKind::Paragraph, "E", vec![]),
        ];
        let r = render_limited(&body, 3);
        assert_eq!(r.markdown, "A\n- B\n\tC");
        assert!(r.truncated);
        assert_eq!(r.unknown_block_ids, vec!["d".to_owned(), "e".to_owned()]);
        let full = render_limited(&body, 5);
        assert!(!full.truncated);
        assert!(full.unknown_block_ids.is_empty());
    }
}
