//! Request cost of incremental passes, counted in the simulator's request log.

use std::time::Duration;

use crate::support::{env, sim_config};

fn non_query_requests(env: &crate::support::Env) -> Vec<String> {
    env.sim
        .request_log()
        .into_iter()
        .filter(|r| r.route != "/v1/data_sources/{id}/query")
        .map(|r| format!("{} {}", r.method, r.route))
        .collect()
}

#[tokio::test]
async fn incremental_passes_over_1000_pages_cost_one_query_or_two_for_150_property_changes() {
    let env = env(sim_config(1000)).await;
    env.pass().await;
    // One more pass settles pages our own overdue writes touched in the first minute.
    env.sim.advance(Duration::from_secs(120));
    env.pass().await;
    env.sim.advance(Duration::from_secs(120));

    env.sim.clear_request_log();
    let nothing = env.pass().await;
    let log = env.sim.request_log();
    println!(
        "nothing changed: {} request(s): {:?}",
        log.len(),
        log.iter().map(|r| &r.route).collect::<Vec<_>>()
    );
    assert_eq!(log.len(), 1, "{:?}", non_query_requests(&env));
    assert_eq!(nothing.query_requests, 1);

    env.sim.advance(Duration::from_secs(120));
    env.sim.set_silent(true);
    let ids: Vec<String> = env
        .live_ids()
        .into_iter()
        .filter(|id| env.sim.page(id).unwrap().status.as_deref() != Some("Done"))
        .collect();
    assert!(ids.len() >= 150);
    for id in ids.iter().take(150) {
        env.sim.set_status(id, "Done").unwrap();
    }
    env.sim.clear_request_log();
    let changed = env.pass().await;
    let log = env.sim.request_log();
    println!(
        "150 property changes: {} request(s) ({} query), {} pages updated",
        log.len(),
        changed.query_requests,
        changed.pages_updated
    );
    assert_eq!(changed.query_requests, 2);
    assert!(
        non_query_requests(&env).is_empty(),
        "{:?}",
        non_query_requests(&env)
    );
    assert_eq!(log.len(), 2);
    assert!(changed.pages_updated >= 150);
    env.assert_exact().await;
}
