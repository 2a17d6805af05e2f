//! Named state (watermarks, cursors) survives reopening.

use crate::helpers::open;

#[tokio::test]
async fn named_state_is_set_replaced_deleted_and_durable() {
    let t = open().await;
    let s = &t.store;
    assert_eq!(s.get_state("watermark").await.unwrap(), None);
    s.set_state("watermark", "2026-11-23T17:00:00.000Z")
        .await
        .unwrap();
    s.set_state("watermark", "2026-11-23T17:42:00.000Z")
        .await
        .unwrap();
    s.set_state("scan_cursor", "abc").await.unwrap();
    s.delete_state("scan_cursor").await.unwrap();
    s.delete_state("never_set").await.unwrap();

    let t = t.reopen().await;
    assert_eq!(
        t.store.get_state("watermark").await.unwrap().as_deref(),
        Some("2026-11-23T17:42:00.000Z")
    );
    assert_eq!(t.store.get_state("scan_cursor").await.unwrap(), None);
}
