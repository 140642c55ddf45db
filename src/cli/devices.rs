//! `gps-ssl devices`: the devices this build can train on, and the adapters each backend finds.

use clap::Args;
use gps_ssl::device::DeviceChoice;

/// Arguments of `gps-ssl devices` (none).
#[derive(Debug, Args)]
pub struct DevicesArgs {}

/// Prints one line per backend of this build, with its adapters by index (`wgpu:N`).
#[allow(clippy::print_stdout)]
pub fn run(_args: DevicesArgs) -> anyhow::Result<()> {
    println!("cpu: burn flex (always built)");
    for (choice, feature) in [
        (DeviceChoice::Wgpu(None), "wgpu"),
        (DeviceChoice::Vulkan(None), "vulkan"),
        (DeviceChoice::Cuda(0), "cuda"),
    ] {
        match choice.open() {
            Err(e) => println!("{feature}: {e}"),
            Ok(_) => {
                println!("{feature}:");
                for a in choice.adapters() {
                    println!("  {feature}:{a}");
                }
            }
        }
    }
    Ok(())
}
