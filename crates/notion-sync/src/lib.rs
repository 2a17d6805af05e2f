#![doc = include_str!("../README.md")]

pub mod app;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod handshake;
pub mod health;
pub mod http;
pub mod listener;
pub mod log_gate;
pub mod progress;
pub mod replica;
pub mod signals;
pub mod state;
pub mod store_budget;
pub mod telemetry;
pub mod webhook_error;
pub mod wiring;

pub use app::{Application, BuildOptions};
pub use config::{Config, Secrets};
