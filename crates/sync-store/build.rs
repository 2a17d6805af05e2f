//! Re-embeds the migrations (`sqlx::migrate!`) whenever a file is added to or changed in
//! the top-level `migrations/sqlite/` or `migrations/postgres/` directory.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/sqlite");
    println!("cargo:rerun-if-changed=../../migrations/postgres");
}
