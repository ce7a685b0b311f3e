//! The `flightdeck` command (being written).

fn main() -> anyhow::Result<()> {
    Ok(())
}
