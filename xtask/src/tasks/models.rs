//! `cargo xtask models fetch NAME` and `cargo xtask models list`: the engine's named trained
//! models (`smallmind::named_models`), fetched through the engine's own checked fetch, the one
//! the tests use too.

use crate::error::usage;
use crate::flags::ModelsAction;
use anyhow::Result;
use smallmind::named_models::{self, NamedModel};

/// Runs the action; exit 0, or a usage error (exit 2) for an unknown name or a failed fetch.
pub fn run(action: &ModelsAction) -> Result<u8> {
    match action {
        ModelsAction::List => {
            for m in named_models::MODELS {
                let state = if m.cached().is_ok() { "fetched" } else { "not fetched" };
                println!("{:<14} {state:<12} {}  {}", m.name, m.path().display(), m.description);
            }
            Ok(0)
        }
        ModelsAction::Fetch { name } => {
            let model = find(name)?;
            if let Ok(path) = model.cached() {
                println!("{name}: already in the cache: {}", path.display());
                return Ok(0);
            }
            let path = named_models::fetch(model, &mut |step| eprintln!("{name}: {step}"))
                .map_err(|e| usage(e.to_string()))?;
            println!("{name}: {}", path.display());
            Ok(0)
        }
    }
}

fn find(name: &str) -> Result<&'static NamedModel> {
    named_models::find(name).ok_or_else(|| {
        usage(format!("no named model `{name}`; named models: {}", named_models::names().join(", ")))
    })
}
