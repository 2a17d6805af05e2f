//! `notion-sync`: parses the command line and runs one command (see `cli`).

fn main() -> std::process::ExitCode {
    notion_sync::cli::main()
}
