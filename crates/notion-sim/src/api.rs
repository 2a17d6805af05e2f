//! The Notion-shaped HTTP API under `/v1`: the router (handlers live in `api_pages.rs`,
//! `api_blocks.rs` and `api_workspace.rs`; the middleware in `gate.rs`). Every unmatched
//! path or method is Notion's `invalid_request_url`.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::api_blocks::{append_children, block_children, delete_block, get_block, update_block};
use crate::api_pages::{create_page, get_markdown, get_page, get_property_item, patch_page};
use crate::api_workspace::{
    create_comment, get_data_source, get_database, get_user, list_comments, list_users,
    query_data_source, search, users_me,
};
use crate::error::ApiError;
use crate::shared::Shared;

/// The Notion API routes (`/v1/*`).
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/users/me", get(users_me).fallback(invalid_url))
        .route("/v1/users", get(list_users).fallback(invalid_url))
        .route("/v1/users/{id}", get(get_user).fallback(invalid_url))
        .route(
            "/v1/blocks/{id}",
            get(get_block)
                .patch(update_block)
                .delete(delete_block)
                .fallback(invalid_url),
        )
        .route(
            "/v1/comments",
            get(list_comments)
                .post(create_comment)
                .fallback(invalid_url),
        )
        .route("/v1/search", post(search).fallback(invalid_url))
        .route(
            "/v1/databases/{id}",
            get(get_database).fallback(invalid_url),
        )
        .route(
            "/v1/data_sources/{id}",
            get(get_data_source).fallback(invalid_url),
        )
        .route(
            "/v1/data_sources/{id}/query",
            post(query_data_source).fallback(invalid_url),
        )
        .route("/v1/pages", post(create_page).fallback(invalid_url))
        .route(
            "/v1/pages/{id}",
            get(get_page).patch(patch_page).fallback(invalid_url),
        )
        .route(
            "/v1/pages/{id}/properties/{property_id}",
            get(get_property_item).fallback(invalid_url),
        )
        .route(
            "/v1/pages/{id}/markdown",
            get(get_markdown).fallback(invalid_url),
        )
        .route(
            "/v1/blocks/{id}/children",
            get(block_children)
                .patch(append_children)
                .fallback(invalid_url),
        )
        .fallback(invalid_url)
}

async fn invalid_url() -> ApiError {
    ApiError::invalid_url()
}
