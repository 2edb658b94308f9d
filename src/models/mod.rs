//! Models: GPT-2's shape, weights and forward pass; built-in presets; checkpoint loading;
//! llama2.c's checkpoint format (the Llama model itself is still to come).

pub mod checkpoint;
pub mod config;
pub mod gpt2;
pub mod llama2c;
pub mod presets;

pub use config::Gpt2Config;
pub use gpt2::Gpt2;
