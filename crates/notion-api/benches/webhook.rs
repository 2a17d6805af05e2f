//! Per-delivery cost of the webhook path: signature verification plus event parsing.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use notion_api::{WebhookBody, sign, verify_signature};

/// A `page.properties_updated` delivery shaped like Notion's documented sample.
const BODY: &str = r#"{"id":"1782edd6-a853-4d4a-b02c-9c8c16f28e53","timestamp":"2024-12-05T23:57:05.379Z","workspace_id":"13950b26-c203-4f3b-b97d-93ec06319565","workspace_name":"Quantify Labs","subscription_id":"29d75c0d-5546-4414-8459-7b7a92f1fc4b","integration_id":"0ef2e755-4912-8096-91c1-00376a88a5ca","type":"page.properties_updated","authors":[{"id":"c7c11cca-1d73-471d-9b6e-bdef51470190","type":"person"}],"accessible_by":[{"id":"556a1abf-4f08-40c6-878a-75890d2a88ba","type":"person"},{"id":"1edc05f6-2702-81b5-8408-00279347f034","type":"bot"}],"attempt_number":1,"entity":{"id":"153104cd-477e-809d-8dc4-ff2d96ae3090","type":"page"},"data":{"parent":{"id":"13950b26-c203-4f3b-b97d-93ec06319565","type":"space"},"updated_properties":["XGe%40","bDf%5B","DbAu"]}}"#;

const KEY: &[u8] = b"secret_tMrlL1qK5vuQAh1b6cZGhFChZTSYJlce98V0pYn7yBl";

fn bench(c: &mut Criterion) {
    let body = BODY.as_bytes();
    let header = sign(KEY, body);
    let mut g = c.benchmark_group("webhook");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify_signature", |b| {
        b.iter(|| verify_signature(black_box(KEY), black_box(body), Some(black_box(&header))))
    });
    g.bench_function("parse_event", |b| {
        b.iter(|| WebhookBody::parse(black_box(body)))
    });
    g.bench_function("verify_and_parse", |b| {
        b.iter(|| {
            verify_signature(black_box(KEY), black_box(body), Some(black_box(&header)))
                .expect("signature");
            WebhookBody::parse(black_box(body)).expect("event")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
