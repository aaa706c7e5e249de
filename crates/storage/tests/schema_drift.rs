//! `src/schema.rs` is what diesel's `print-schema` makes of a database migrated by our embedded
//! migrations (with `diesel.toml`'s patch): a migration without a regenerated schema, or a
//! schema edited by hand, fails here. Regenerate with `just schema`.
//!
//! Needs the diesel CLI (`cargo install diesel_cli --no-default-features --features postgres`).
//! Without it the test says so and passes, unless `INVITRACK_REQUIRE_DIESEL_CLI` is set (CI
//! sets it, and installs the CLI).

use std::path::Path;
use std::process::Command;

use invitrack_testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_rs_is_what_the_migrations_make() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cli = std::env::var("DIESEL_CLI").unwrap_or_else(|_| "diesel".into());
    if Command::new(&cli).arg("--version").output().is_err() {
        assert!(
            std::env::var_os("INVITRACK_REQUIRE_DIESEL_CLI").is_none(),
            "the diesel CLI ({cli}) is not installed"
        );
        eprintln!("skipped: the diesel CLI ({cli}) is not installed");
        return;
    }
    let database = TestDatabase::new("invitrack_schema_drift");
    invitrack_storage::prepare_database(&database.url())
        .await
        .expect("migrated");

    let output = Command::new(&cli)
        .current_dir(crate_dir)
        .args(["print-schema", "--database-url", &database.url()])
        .output()
        .expect("diesel print-schema runs");
    assert!(
        output.status.success(),
        "diesel print-schema: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let generated = String::from_utf8(output.stdout).expect("UTF-8");
    let committed =
        std::fs::read_to_string(crate_dir.join("src/schema.rs")).expect("src/schema.rs");
    assert!(
        generated == committed,
        "src/schema.rs differs from the migrations: run `just schema`\n{}",
        first_difference(&committed, &generated)
    );
}

fn first_difference(committed: &str, generated: &str) -> String {
    let line = committed
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
    format!(
        "line {}: committed {:?}, generated {:?}",
        line + 1,
        committed.lines().nth(line),
        generated.lines().nth(line)
    )
}
