//! The shared Markdown rendering spec, case by case (notion-sim must agree byte for byte).

use notion_api::{Block, BlockNode, render_markdown};
use serde_json::{Value, json};

fn seg(text: &str, ann: &[&str], link: Option<&str>) -> Value {
    let on = |k: &str| ann.contains(&k);
    json!({"type":"text","text":{"content":text,"link":link.map(|u| json!({"url":u}))},
        "annotations":{"bold":on("bold"),"italic":on("italic"),"strikethrough":on("strikethrough"),
                       "underline":on("underline"),"code":on("code"),"color":if on("color") {"red"} else {"default"}},
        "plain_text":text,"href":link})
}

fn t(s: &str) -> Vec<Value> {
    vec![seg(s, &[], None)]
}

fn node(kind: &str, payload: Value, children: Vec<BlockNode>) -> BlockNode {
    let block: Block = serde_json::from_value(json!({
        "object":"block","id":"10000000-0000-4000-8000-000000000000",
        "created_time":"2025-01-31T17:42:00.000Z","last_edited_time":"2025-01-31T17:42:00.000Z",
        "has_children": !children.is_empty(), "in_trash": false,
        "type": kind, kind: payload
    }))
    .unwrap();
    BlockNode { block, children }
}

fn rt(kind: &str, segs: Vec<Value>) -> BlockNode {
    node(kind, json!({"rich_text": segs, "color": "default"}), vec![])
}

fn check(blocks: Vec<BlockNode>, expected: &str) {
    assert_eq!(render_markdown(&blocks), expected);
}

#[test]
fn empty_body_is_empty_string() {
    check(vec![], "");
}

#[test]
fn every_block_type() {
    check(vec![rt("paragraph", t("hello"))], "hello");
    check(vec![rt("heading_1", t("A"))], "# A");
    check(vec![rt("heading_2", t("B"))], "## B");
    check(vec![rt("heading_3", t("C"))], "### C");
    check(vec![rt("bulleted_list_item", t("x"))], "- x");
    check(
        vec![
            rt("numbered_list_item", t("x")),
            rt("numbered_list_item", t("y")),
        ],
        "1. x\n1. y",
    );
    check(
        vec![
            node(
                "to_do",
                json!({"rich_text": t("open"), "checked": false}),
                vec![],
            ),
            node(
                "to_do",
                json!({"rich_text": t("done"), "checked": true}),
                vec![],
            ),
        ],
        "- [ ] open\n- [x] done",
    );
    check(vec![rt("quote", t("q"))], "> q");
    check(
        vec![node(
            "callout",
            json!({"rich_text": t("note"), "icon": {"type":"emoji","emoji":"💡"}}),
            vec![],
        )],
        "<callout>note</callout>",
    );
    check(
        vec![node("toggle", json!({"rich_text": t("more")}), vec![])],
        "<details>\n<summary>more</summary>\n</details>",
    );
    check(
        vec![node(
            "code",
            json!({"rich_text": t("fn main() {}\nlet x = 1;"), "language": "rust", "caption": []}),
            vec![],
        )],
        "```rust\nfn main() {}\nlet x = 1;\n```",
    );
    check(
        vec![node(
            "code",
            json!({"rich_text": t("plain"), "language": "plain text", "caption": []}),
            vec![],
        )],
        "```\nplain\n```",
    );
    check(vec![node("divider", json!({}), vec![])], "---");
    check(
        vec![node("child_page", json!({"title": "Sub"}), vec![])],
        "<page>Sub</page>",
    );
    check(
        vec![node("child_database", json!({"title": "Tasks"}), vec![])],
        "<database>Tasks</database>",
    );
    check(
        vec![node(
            "image",
            json!({"type":"external","external":{"url":"https://x"}}),
            vec![],
        )],
        "<unknown type=\"image\"/>",
    );
    check(vec![rt("paragraph", vec![])], "");
}

#[test]
fn rich_text_annotations_apply_innermost_first() {
    let cases: Vec<(Value, &str)> = vec![
        (seg("x", &["bold"], None), "**x**"),
        (seg("x", &["italic"], None), "*x*"),
        (seg("x", &["strikethrough"], None), "~~x~~"),
        (seg("x", &["code"], None), "`x`"),
        (seg("x", &["underline", "color"], None), "x"),
        (
            seg("x", &["code", "bold", "italic", "strikethrough"], None),
            "~~***`x`***~~",
        ),
        (
            seg("x", &["bold"], Some("https://a.b")),
            "[**x**](https://a.b)",
        ),
        (seg("x", &[], Some("https://a.b")), "[x](https://a.b)"),
    ];
    for (s, want) in cases {
        check(vec![rt("paragraph", vec![s.clone()])], want);
    }
    // segments concatenate
    check(
        vec![rt(
            "paragraph",
            vec![
                seg("a ", &[], None),
                seg("b", &["bold"], None),
                seg(" c", &[], None),
            ],
        )],
        "a **b** c",
    );
    // mentions and equations render their plain_text; href makes them links
    let mention = json!({"type":"mention","mention":{"type":"page","page":{"id":"10000000-0000-4000-8000-000000000001"}},
        "annotations":{"bold":false,"italic":false,"strikethrough":false,"underline":false,"code":false,"color":"default"},
        "plain_text":"Other page","href":"https://www.notion.so/10000000000040008000000000000001"});
    let equation = json!({"type":"equation","equation":{"expression":"x^2"},
        "annotations":{"bold":false,"italic":true,"strikethrough":false,"underline":false,"code":false,"color":"default"},
        "plain_text":"x^2","href":null});
    check(
        vec![rt(
            "paragraph",
            vec![mention, seg(" and ", &[], None), equation],
        )],
        "[Other page](https://www.notion.so/10000000000040008000000000000001) and *x^2*",
    );
}

#[test]
fn children_are_tab_indented_per_level() {
    let tree = vec![
        node(
            "bulleted_list_item",
            json!({"rich_text": t("a")}),
            vec![
                node(
                    "bulleted_list_item",
                    json!({"rich_text": t("b")}),
                    vec![rt("paragraph", t("c"))],
                ),
                node(
                    "code",
                    json!({"rich_text": t("l1\nl2"), "language": "sh"}),
                    vec![],
                ),
            ],
        ),
        rt("paragraph", t("after")),
    ];
    check(tree, "- a\n\t- b\n\t\tc\n\t```sh\n\tl1\n\tl2\n\t```\nafter");
}

#[test]
fn toggle_children_sit_between_summary_and_close() {
    let tree = vec![node(
        "toggle",
        json!({"rich_text": t("More")}),
        vec![
            rt("paragraph", t("inside")),
            node(
                "toggle",
                json!({"rich_text": t("Deeper")}),
                vec![rt("quote", t("q"))],
            ),
        ],
    )];
    check(
        tree,
        "<details>\n<summary>More</summary>\n\tinside\n\t<details>\n\t<summary>Deeper</summary>\n\t\t> q\n\t</details>\n</details>",
    );
}

#[test]
fn unknown_blocks_keep_their_children() {
    let tree = vec![node(
        "synced_block",
        json!({"synced_from": null}),
        vec![rt("paragraph", t("x"))],
    )];
    check(tree, "<unknown type=\"synced_block\"/>\n\tx");
}

#[test]
fn multi_line_text_is_prefixed_on_every_line() {
    let tree = vec![rt("quote", t("top"))];
    check(tree, "> top");
    let tree = vec![node(
        "toggle",
        json!({"rich_text": t("T")}),
        vec![rt("paragraph", t("one\ntwo"))],
    )];
    check(
        tree,
        "<details>\n<summary>T</summary>\n\tone\n\ttwo\n</details>",
    );
}
