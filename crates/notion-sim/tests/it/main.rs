//! Integration tests of notion-sim through its public surface and real sockets.

mod blocks;
mod cli;
mod control;
mod fidelity;
mod filters;
mod helpers;
mod limits;
mod mutations;
mod pagination;
mod time;
mod validation;
mod webhooks;
mod writes;
