//! Vicreg on the bundled Fashion-MNIST subset, plain or GPS:
//! `cargo run --release --example vicreg -- [--gps neighbours.parquet] [--steps 50]`.

#[path = "common/ssl_example.rs"]
mod ssl_example;

fn main() -> anyhow::Result<()> {
    ssl_example::run(gps_ssl::ssl::MethodKind::Vicreg)
}
