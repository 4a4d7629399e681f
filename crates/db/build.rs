// `sqlx::migrate!` embeds migrations/ at compile time, but cargo does not know the macro read
// that folder: without this line, a new or edited migration would not trigger a rebuild and the
// binaries and tests would run a stale schema.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
