//! Webhooks: signature verification and event parsing. Pure functions, no I/O.

mod event;
mod signature;

pub use event::{
    Author, EntityRef, EventData, EventParseError, EventType, WebhookBody, WebhookEvent,
};
pub use signature::{SIGNATURE_HEADER, Signature, SignatureError, sign, verify_signature};
