//! The page-sync job on its own: what it fetches, when, and what it costs.

use notion_sim::{BodyEdit, SimBlock};
use sync_engine::PageSyncPayload;
use sync_store::Lane;

use crate::support::{Env, env, id, sim_config};

fn payload(props: bool, body: bool) -> PageSyncPayload {
    PageSyncPayload {
        props,
        body,
        human: true,
        event_time: None,
    }
}

async fn sync(env: &Env, page: &str, p: PageSyncPayload) {
    env.engine
        .sync_page(id(page), &p, Lane::Interactive)
        .await
        .unwrap();
}

#[tokio::test]
async fn property_job_costs_one_get_and_body_job_one_markdown_request() {
    let env = env(sim_config(3)).await;
    let page = env.live_ids()[0].clone();
    env.sim.clear_request_log();
    sync(&env, &page, payload(true, true)).await;
    assert_eq!(env.count("GET", "/v1/pages/{id}"), 1);
    assert_eq!(env.count("GET", "/v1/pages/{id}/markdown"), 1);
    env.assert_page_exact(&page).await;

    env.sim.set_title(&page, "Renamed").unwrap();
    env.sim.clear_request_log();
    sync(&env, &page, payload(true, false)).await;
    assert_eq!(env.sim.request_log().len(), 1, "properties only: one GET");
    assert_eq!(
        env.store.get_page(&id(&page)).await.unwrap().unwrap().title,
        "Renamed"
    );

    env.sim
        .edit_body(&page, BodyEdit::AppendParagraph("more".into()))
        .unwrap();
    env.sim.clear_request_log();
    sync(&env, &page, payload(false, true)).await;
    assert_eq!(
        env.sim.request_log().len(),
        1,
        "body only: one markdown request"
    );
    let row = env.store.get_page(&id(&page)).await.unwrap().unwrap();
    assert!(row.body_markdown.unwrap().ends_with("more"));
    assert!(row.body_hash.is_some());
}

#[tokio::test]
async fn an_edit_the_properties_do_not_explain_fetches_the_body() {
    let env = env(sim_config(3)).await;
    let page = env.live_ids()[1].clone();
    sync(&env, &page, payload(true, true)).await;
    env.sim.advance(std::time::Duration::from_secs(120));
    // A body edit announced only as a property event (aggregated/misrouted).
    env.sim
        .edit_body(&page, BodyEdit::AppendParagraph("hidden".into()))
        .unwrap();
    env.sim.clear_request_log();
    sync(&env, &page, payload(true, false)).await;
    assert_eq!(env.count("GET", "/v1/pages/{id}/markdown"), 1);
    env.assert_page_exact(&page).await;
}

#[tokio::test]
async fn block_children_fallback_renders_the_same_markdown() {
    let env = env(sim_config(25)).await;
    env.sim.set_markdown_endpoint(false, 1000);
    for page in env.live_ids() {
        sync(&env, &page, payload(true, true)).await;
    }
    assert!(env.count("GET", "/v1/blocks/{id}/children") >= 25);
    // The first 404 from the endpoint, on a page whose blocks answer, switches it off.
    assert_eq!(env.count("GET", "/v1/pages/{id}/markdown"), 1);
    // Identical bytes whichever way the body came.
    env.assert_exact().await;
}

#[tokio::test]
async fn truncated_markdown_falls_back_to_blocks() {
    let env = env(sim_config(0)).await;
    let blocks: Vec<SimBlock> = (0..30)
        .map(|i| SimBlock::Paragraph(format!("line {i}")))
        .collect();
    let page = env.sim.create_task(notion_sim::NewTask {
        title: "long".into(),
        body: blocks,
        silent: true,
        ..Default::default()
    });
    env.sim.set_markdown_endpoint(true, 10);
    sync(&env, &page, payload(true, true)).await;
    assert_eq!(env.count("GET", "/v1/pages/{id}/markdown"), 1);
    assert!(env.count("GET", "/v1/blocks/{id}/children") >= 1);
    let body = env
        .store
        .get_page(&id(&page))
        .await
        .unwrap()
        .unwrap()
        .body_markdown
        .unwrap();
    assert!(body.ends_with("line 29"), "{body}");
}

#[tokio::test]
async fn not_shared_or_deleted_pages_are_marked_trashed_and_foreign_pages_dropped() {
    let env = env(sim_config(3)).await;
    let page = env.live_ids()[0].clone();
    sync(&env, &page, payload(true, true)).await;
    env.sim.unshare(&page).unwrap();
    sync(&env, &page, payload(true, false)).await;
    assert!(
        env.store
            .get_page(&id(&page))
            .await
            .unwrap()
            .unwrap()
            .in_trash
    );

    let other = env.sim.other_page_ids()[0].clone();
    sync(&env, &other, payload(true, true)).await;
    assert!(
        env.store.get_page(&id(&other)).await.unwrap().is_none(),
        "other data source not mirrored"
    );

    let trashed = env.live_ids()[1].clone();
    sync(&env, &trashed, payload(true, true)).await;
    env.sim.trash(&trashed).unwrap();
    sync(&env, &trashed, payload(true, false)).await;
    assert!(
        env.store
            .get_page(&id(&trashed))
            .await
            .unwrap()
            .unwrap()
            .in_trash
    );
}

#[tokio::test]
async fn an_echo_of_our_own_write_costs_nothing() {
    let env = env(sim_config(3)).await;
    let page = env.live_ids()[0].clone();
    sync(&env, &page, payload(true, true)).await;
    let observed = env
        .store
        .get_page(&id(&page))
        .await
        .unwrap()
        .unwrap()
        .observed_at;
    env.sim.clear_request_log();
    let echo = PageSyncPayload {
        props: true,
        body: false,
        human: false,
        event_time: Some(observed.to_rfc3339()),
    };
    sync(&env, &page, echo).await;
    assert!(env.sim.request_log().is_empty());
    // A newer bot event is not an echo of what we hold.
    let later = PageSyncPayload {
        props: true,
        body: false,
        human: false,
        event_time: Some((observed + chrono::TimeDelta::seconds(30)).to_rfc3339()),
    };
    sync(&env, &page, later).await;
    assert_eq!(env.sim.request_log().len(), 1);
}
