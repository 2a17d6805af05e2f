//! Block children (pagination, nesting) and the markdown endpoint, cross-checked against an
//! independent renderer written from the shared spec over the block JSON.

use notion_sim::{NewTask, SimBlock, SimConfig};
use serde_json::{Value, json};

use crate::helpers::{Api, assert_error, fast_config, sim};

const MD_VERSION: &str = "2026-03-11";

async fn children(api: &Api, id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/blocks/{id}/children?start_cursor={c}"),
            None => format!("/v1/blocks/{id}/children"),
        };
        let res = api.get(&path).await;
        assert_eq!(res.status, 200, "{}", res.body);
        out.extend(res.body["results"].as_array().unwrap().iter().cloned());
        match res.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn rich(v: &Value) -> String {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let a = &s["annotations"];
            let mut x = s["plain_text"].as_str().unwrap().to_owned();
            if a["code"] == true {
                x = format!("`{x}`");
            }
            if a["bold"] == true {
                x = format!("**{x}**");
            }
            if a["italic"] == true {
                x = format!("*{x}*");
            }
            if a["strikethrough"] == true {
                x = format!("~~{x}~~");
            }
            if let Some(url) = s["href"].as_str() {
                x = format!("[{x}]({url})");
            }
            x
        })
        .collect()
}

/// The shared Markdown spec, rendered from block JSON fetched over HTTP.
async fn render(api: &Api, blocks: &[Value], depth: usize, out: &mut Vec<String>) {
    let tabs = "\t".repeat(depth);
    for b in blocks {
        let t = b["type"].as_str().unwrap();
        let text = b[t].get("rich_text").map(rich).unwrap_or_default();
        let kids = if b["has_children"] == true {
            Box::pin(async { children(api, b["id"].as_str().unwrap()).await }).await
        } else {
            Vec::new()
        };
        let own = match t {
            "paragraph" => text,
            "heading_1" => format!("# {text}"),
            "heading_2" => format!("## {text}"),
            "heading_3" => format!("### {text}"),
            "bulleted_list_item" => format!("- {text}"),
            "numbered_list_item" => format!("1. {text}"),
            "to_do" => format!(
                "- [{}] {text}",
                if b["to_do"]["checked"] == true {
                    "x"
                } else {
                    " "
                }
            ),
            "quote" => format!("> {text}"),
            "callout" => format!("<callout>{text}</callout>"),
            "divider" => "---".to_owned(),
            "code" => {
                let lang = b["code"]["language"].as_str().unwrap();
                let lang = if lang == "plain text" { "" } else { lang };
                format!("```{lang}\n{text}\n```")
            }
            "toggle" => {
                out.push(format!("{tabs}<details>"));
                out.push(format!("{tabs}<summary>{text}</summary>"));
                Box::pin(render(api, &kids, depth + 1, out)).await;
                out.push(format!("{tabs}</details>"));
                continue;
            }
            other => format!("<unknown type=\"{other}\"/>"),
        };
        for line in own.split('\n') {
            out.push(format!("{tabs}{line}"));
        }
        Box::pin(render(api, &kids, depth + 1, out)).await;
    }
}

async fn markdown(api: &Api, id: &str) -> crate::helpers::Res {
    api.send(
        reqwest::Method::GET,
        &format!("/v1/pages/{id}/markdown"),
        Some(MD_VERSION),
        None,
    )
    .await
}

#[tokio::test]
async fn children_paginate_by_100_and_nest() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let long = sim
        .pages()
        .into_iter()
        .find(|p| p.markdown.lines().count() > 100)
        .expect("the generator makes a long page");
    let first = api.get(&format!("/v1/blocks/{}/children", long.id)).await;
    assert_eq!(first.body["results"].as_array().unwrap().len(), 100);
    assert_eq!(first.body["has_more"], true);
    assert_eq!(first.body["type"], "block");
    let all = children(&api, &long.id).await;
    assert_eq!(all.len(), 131);
    let small = api
        .get(&format!("/v1/blocks/{}/children?page_size=50", long.id))
        .await;
    assert_eq!(small.body["results"].as_array().unwrap().len(), 50);
    assert_error(
        &api.get(&format!("/v1/blocks/{}/children?page_size=101", long.id))
            .await,
        400,
        "validation_error",
    );
    assert_error(
        &api.get(&format!(
            "/v1/blocks/{}/children?start_cursor={}",
            long.id,
            sim.pages()[0].id
        ))
        .await,
        400,
        "validation_error",
    );

    let id = sim.create_task(NewTask {
        title: "Nested".into(),
        body: vec![
            SimBlock::Bulleted(
                "parent".into(),
                vec![SimBlock::Numbered(
                    "child".into(),
                    vec![SimBlock::ToDo("grandchild".into(), true)],
                )],
            ),
            SimBlock::Divider,
        ],
        ..Default::default()
    });
    let top = children(&api, &id).await;
    assert_eq!(top[0]["has_children"], true);
    assert_eq!(top[0]["parent"], json!({"type": "page_id", "page_id": id}));
    assert_eq!(top[1]["has_children"], false);
    let bullet = top[0]["id"].as_str().unwrap();
    let kids = children(&api, bullet).await;
    assert_eq!(kids[0]["type"], "numbered_list_item");
    assert_eq!(
        kids[0]["parent"],
        json!({"type": "block_id", "block_id": bullet})
    );
    let grandkids = children(&api, kids[0]["id"].as_str().unwrap()).await;
    assert_eq!(grandkids[0]["to_do"]["checked"], true);
}

#[tokio::test]
async fn markdown_endpoint_agrees_with_block_rendering() {
    let sim = sim(SimConfig {
        pages: 30,
        ..fast_config()
    })
    .await;
    let api = Api::new(&sim);
    let mut nonempty = 0;
    for p in sim.pages() {
        let res = markdown(&api, &p.id).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["object"], "page_markdown");
        assert_eq!(res.body["id"], p.id);
        assert_eq!(res.body["truncated"], false);
        assert_eq!(res.body["unknown_block_ids"], json!([]));
        let md = res.body["markdown"].as_str().unwrap();
        assert_eq!(md, p.markdown);
        let mut lines = Vec::new();
        render(&api, &children(&api, &p.id).await, 0, &mut lines).await;
        assert_eq!(md, lines.join("\n"), "page {}", p.id);
        if !md.is_empty() {
            nonempty += 1;
        }
    }
    assert!(nonempty > 10);
}

#[tokio::test]
async fn markdown_is_answered_at_every_modelled_version_honours_the_limit_and_can_be_disabled() {
    let sim = sim(fast_config()).await;
    let api = Api::new(&sim);
    let id = sim.create_task(NewTask {
        title: "Limits".into(),
        body: vec![
            SimBlock::Paragraph("a".into()),
            SimBlock::Toggle(
                "t".into(),
                vec![
                    SimBlock::Paragraph("inside".into()),
                    SimBlock::Quote("q".into()),
                ],
            ),
            SimBlock::Paragraph("z".into()),
        ],
        ..Default::default()
    });
    // 2025-09-03 (as recorded Notion traffic answers it) and 2026-03-11 alike.
    let at_default = api.get(&format!("/v1/pages/{id}/markdown")).await;
    assert_eq!(at_default.status, 200, "{:?}", at_default.body);
    assert_eq!(at_default.body["object"], "page_markdown");
    let at_newest = markdown(&api, &id).await;
    assert_eq!(at_newest.body["markdown"], at_default.body["markdown"]);

    sim.set_markdown_endpoint(true, 3);
    let res = markdown(&api, &id).await;
    assert_eq!(res.body["truncated"], true);
    assert_eq!(
        res.body["markdown"],
        "a\n<details>\n<summary>t</summary>\n\tinside\n</details>"
    );
    let unknown = res.body["unknown_block_ids"].as_array().unwrap().clone();
    assert_eq!(unknown.len(), 2);
    let sub = markdown(&api, unknown[0].as_str().unwrap()).await;
    assert_eq!(sub.status, 200);
    assert_eq!(sub.body["markdown"], "> q");

    sim.set_markdown_endpoint(false, 1000);
    assert_error(&markdown(&api, &id).await, 404, "object_not_found");
    sim.set_markdown_endpoint(true, 1000);
    assert_eq!(
        markdown(&api, &id).await.body["markdown"],
        "a\n<details>\n<summary>t</summary>\n\tinside\n\t> q\n</details>\nz"
    );

    sim.unshare(&id).unwrap();
    assert_error(&markdown(&api, &id).await, 404, "object_not_found");
    assert_error(
        &api.get(&format!("/v1/blocks/{id}/children")).await,
        404,
        "object_not_found",
    );
    let page = api.get(&format!("/v1/pages/{id}")).await;
    assert_error(&page, 404, "object_not_found");
    assert!(
        page.body["message"]
            .as_str()
            .unwrap()
            .contains("Make sure the relevant pages and databases are shared")
    );
}
