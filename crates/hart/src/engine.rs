//! Which engine runs a hart's instructions.

/// The engines. Both give the same results, counts and state at every
/// instruction; they differ only in speed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// Every instruction decoded and executed by the interpreter: the
    /// reference.
    #[default]
    Interp,
    /// Hot blocks translated to host code (x86-64 hosts), the interpreter
    /// for everything else (see jit/).
    Jit,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Interp => "interp",
            Engine::Jit => "jit",
        }
    }

    /// The engine named `name` (`interp` or `jit`).
    pub fn parse(name: &str) -> Option<Engine> {
        match name {
            "interp" => Some(Engine::Interp),
            "jit" => Some(Engine::Jit),
            _ => None,
        }
    }

    /// The engine a hart runs when none is asked for: the translator where
    /// there is one.
    pub fn default_for_host() -> Engine {
        if cfg!(target_arch = "x86_64") {
            Engine::Jit
        } else {
            Engine::Interp
        }
    }
}
