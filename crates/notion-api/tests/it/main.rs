//! The notion-api integration tests (one binary; modules by topic).

#![recursion_limit = "256"]

mod client;
mod conformance;
mod markdown;
mod models;
mod pacer;
mod support;
mod webhooks;
