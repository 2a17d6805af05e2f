//! Webhook payloads from Notion's docs parse; the signature known-answer vector holds;
//! property tests for sign/verify and for parsers on hostile input.

use notion_api::{
    EventType, NotionId, Signature, SignatureError, WebhookBody, sign, verify_signature,
};
use proptest::prelude::*;
use serde_json::Value;

use crate::support::{fixtures_dir, json_files, read_json};

#[test]
fn every_documented_payload_parses() {
    let Some(dir) = fixtures_dir() else { return };
    let mut events = 0;
    for file in json_files(&dir.join("webhooks")) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name == "signature_vector.json" {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        let raw: Value = serde_json::from_slice(&bytes).unwrap();
        let parsed = WebhookBody::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        match parsed {
            WebhookBody::Verification { verification_token } => {
                assert_eq!(
                    verification_token,
                    raw["verification_token"].as_str().unwrap()
                );
            }
            WebhookBody::Event(ev) => {
                events += 1;
                assert_eq!(ev.id, raw["id"].as_str().unwrap(), "{name}");
                assert_eq!(
                    ev.event_type.as_str(),
                    raw["type"].as_str().unwrap(),
                    "{name}"
                );
                assert!(
                    !matches!(ev.event_type, EventType::Unknown(_)),
                    "{name}: documented type parsed as unknown"
                );
                // the file name mirrors the type: page__created.json <-> page.created
                assert_eq!(
                    name.trim_end_matches(".json").replace("__", "."),
                    ev.event_type.as_str()
                );
                assert_eq!(
                    ev.entity.id.to_string(),
                    raw["entity"]["id"].as_str().unwrap()
                );
                assert_eq!(ev.entity.kind, raw["entity"]["type"].as_str().unwrap());
                assert_eq!(
                    u64::from(ev.attempt_number),
                    raw["attempt_number"].as_u64().unwrap()
                );
                assert_eq!(ev.authors.len(), raw["authors"].as_array().unwrap().len());
                assert_eq!(
                    ev.accessible_by.len(),
                    raw["accessible_by"].as_array().map_or(0, Vec::len)
                );
                assert_eq!(ev.workspace_name.as_deref(), raw["workspace_name"].as_str());
                let data = &raw["data"];
                assert_eq!(
                    ev.data.parent.as_ref().map(|p| p.id.to_string()),
                    data["parent"]["id"].as_str().map(str::to_owned)
                );
                assert_eq!(
                    ev.data.updated_blocks.len(),
                    data["updated_blocks"].as_array().map_or(0, Vec::len)
                );
                let want_props: Vec<String> = data["updated_properties"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| p.as_str().or_else(|| p["id"].as_str()).unwrap().to_owned())
                    .collect();
                assert_eq!(ev.data.updated_properties, want_props, "{name}");
            }
        }
    }
    assert!(
        events >= 7,
        "expected the documented sample events, parsed {events}"
    );
}

#[test]
fn comment_events_carry_their_page() {
    let Some(dir) = fixtures_dir() else { return };
    let bytes = std::fs::read(dir.join("webhooks/comment__created.json")).unwrap();
    let WebhookBody::Event(ev) = WebhookBody::parse(&bytes).unwrap() else {
        panic!("not an event")
    };
    assert_eq!(ev.event_type, EventType::CommentCreated);
    assert_eq!(
        ev.data.page_id,
        Some(NotionId::parse("0ef104cd-477e-80e1-8571-cfd10e92339a").unwrap())
    );
}

#[test]
fn signature_known_answer_vector() {
    let Some(dir) = fixtures_dir() else { return };
    let v = read_json(&dir.join("webhooks/signature_vector.json"));
    let key = v["verification_token"].as_str().unwrap().as_bytes();
    let body = v["body"].as_str().unwrap().as_bytes();
    let header = v["x_notion_signature"].as_str().unwrap();
    assert_eq!(sign(key, body), header);
    assert_eq!(verify_signature(key, body, Some(header)), Ok(()));
    assert_eq!(
        verify_signature(key, body, Some(&header.to_ascii_uppercase())),
        Ok(())
    );
    // the byte-exact handshake body is the signed message
    let stored = std::fs::read(dir.join("webhooks/verification_request.body.json")).unwrap();
    assert_eq!(stored, body);
    assert_eq!(verify_signature(key, &stored, Some(header)), Ok(()));
    let mut tampered = stored.clone();
    tampered.push(b'\n');
    assert_eq!(
        verify_signature(key, &tampered, Some(header)),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(b"secret_other", body, Some(header)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn unknown_event_types_and_missing_fields() {
    let body = br#"{"id":"e1","timestamp":"2025-01-01T00:00:00.000Z","type":"view.created",
        "entity":{"id":"0ef104cd477e80e18571cfd10e92339a","type":"view"},"data":{}}"#;
    let WebhookBody::Event(ev) = WebhookBody::parse(body).unwrap() else {
        panic!()
    };
    assert_eq!(ev.event_type, EventType::Unknown("view.created".into()));
    assert_eq!(ev.attempt_number, 1);
    for (field, body) in [
        (
            "id",
            r#"{"timestamp":"2025-01-01T00:00:00Z","type":"page.created","entity":{"id":"0ef104cd477e80e18571cfd10e92339a","type":"page"}}"#,
        ),
        (
            "type",
            r#"{"id":"e","timestamp":"2025-01-01T00:00:00Z","entity":{"id":"0ef104cd477e80e18571cfd10e92339a","type":"page"}}"#,
        ),
        (
            "entity",
            r#"{"id":"e","timestamp":"2025-01-01T00:00:00Z","type":"page.created"}"#,
        ),
        (
            "timestamp",
            r#"{"id":"e","type":"page.created","entity":{"id":"0ef104cd477e80e18571cfd10e92339a","type":"page"}}"#,
        ),
    ] {
        let e = WebhookBody::parse(body.as_bytes()).unwrap_err();
        assert_eq!(e.to_string(), format!("missing field `{field}`"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn verify_accepts_what_sign_produces(key in proptest::collection::vec(any::<u8>(), 0..80),
                                         body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let h = sign(&key, &body);
        prop_assert_eq!(verify_signature(&key, &body, Some(&h)), Ok(()));
        prop_assert_eq!(Signature::parse(&h).unwrap().verify(&key, &body), Ok(()));
    }

    #[test]
    fn any_flipped_body_byte_fails(key in proptest::collection::vec(any::<u8>(), 1..64),
                                   body in proptest::collection::vec(any::<u8>(), 1..1024),
                                   idx in any::<prop::sample::Index>(),
                                   flip in 1u8..=255) {
        let h = sign(&key, &body);
        let mut tampered = body.clone();
        let i = idx.index(tampered.len());
        tampered[i] ^= flip;
        prop_assert_eq!(verify_signature(&key, &tampered, Some(&h)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn wrong_key_fails(key in proptest::collection::vec(any::<u8>(), 1..64),
                       other in proptest::collection::vec(any::<u8>(), 1..64),
                       body in proptest::collection::vec(any::<u8>(), 0..512)) {
        prop_assume!(key != other);
        let h = sign(&key, &body);
        prop_assert_eq!(verify_signature(&other, &body, Some(&h)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn any_flipped_signature_digit_fails(body in proptest::collection::vec(any::<u8>(), 0..256),
                                         pos in 0usize..64, step in 1u8..16) {
        let h = sign(b"key", &body);
        let mut digits: Vec<u8> = h.into_bytes();
        let i = 7 + pos;
        let v = (digits[i] as char).to_digit(16).unwrap() as u8;
        digits[i] = b"0123456789abcdef"[usize::from((v + step) % 16)];
        let h = String::from_utf8(digits).unwrap();
        prop_assert_eq!(verify_signature(b"key", &body, Some(&h)), Err(SignatureError::Mismatch));
    }

    #[test]
    fn malformed_headers_never_panic(header in ".{0,100}") {
        // Either a clean parse error or a well-formed signature that then mismatches.
        match Signature::parse(&header) {
            Ok(_) => prop_assert_eq!(header.trim().len(), 71),
            Err(e) => prop_assert!(matches!(e, SignatureError::Malformed(_) | SignatureError::Missing)),
        }
        let _ = verify_signature(b"k", b"body", Some(&header));
    }

    #[test]
    fn sha256_prefixed_garbage_never_panics(tail in "[0-9a-fA-FxyZ=é ]{0,80}") {
        let header = format!("sha256={tail}");
        let r = verify_signature(b"k", b"body", Some(&header));
        prop_assert!(r.is_err());
    }

    #[test]
    fn webhook_parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = WebhookBody::parse(&body);
    }

    #[test]
    fn ids_round_trip_through_both_forms(bytes in any::<[u8; 16]>()) {
        let id = NotionId::from_bytes(bytes);
        prop_assert_eq!(NotionId::parse(&id.to_string()).unwrap(), id);
        prop_assert_eq!(NotionId::parse(&id.simple().to_uppercase()).unwrap(), id);
    }

    #[test]
    fn id_parser_never_panics(s in "\\PC{0,40}") {
        let _ = NotionId::parse(&s);
    }
}
