//! Per-detector sandbox limits and the memory limiter each call's store runs under.

use std::time::Duration;

use super::settings::{DetectorOverride, RuntimeConfig};

/// The budget of one detector call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Instantiate + call must finish within this (enforced by epoch interruption).
    pub deadline: Duration,
    /// Sum of all linear memories of the instance.
    pub memory_bytes: usize,
    pub max_findings: usize,
    pub max_output_bytes: usize,
}

/// Tables are pointer-sized slots; language runtimes (CPython) need tens of thousands.
pub const MAX_TABLE_ELEMENTS: usize = 200_000;

impl Limits {
    pub fn from_config(c: &RuntimeConfig) -> Limits {
        Limits {
            deadline: Duration::from_millis(c.deadline_ms),
            memory_bytes: mib(c.memory_mib),
            max_findings: c.max_findings,
            max_output_bytes: c.max_output_bytes,
        }
    }

    /// These limits with a detector's overrides applied.
    pub fn with(mut self, o: &DetectorOverride) -> Limits {
        if let Some(ms) = o.deadline_ms {
            self.deadline = Duration::from_millis(ms);
        }
        if let Some(m) = o.memory_mib {
            self.memory_bytes = mib(m);
        }
        self
    }
}

fn mib(m: u64) -> usize {
    usize::try_from(m.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
}

/// Caps the total linear memory of one instance; remembers that the cap was hit so a trap
/// that follows is reported as a memory blow-up rather than a generic trap.
#[derive(Debug)]
pub struct MemoryCap {
    limit: usize,
    in_use: usize,
    pub hit: bool,
}

impl MemoryCap {
    pub fn new(limit: usize) -> Self {
        MemoryCap {
            limit,
            in_use: 0,
            hit: false,
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.in_use - current.min(self.in_use) + desired;
        if after > self.limit {
            self.hit = true;
            // An error (not `false`) traps at once: a guest cannot catch it and limp on.
            wasmtime::bail!(
                "memory cap of {} MiB reached (asked for {} MiB)",
                self.limit >> 20,
                after >> 20
            );
        }
        self.in_use = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memory_cap_counts_every_memory_and_flags_the_blow_up() {
        let mut cap = MemoryCap::new(10 << 20);
        assert!(cap.memory_growing(0, 4 << 20, None).unwrap());
        assert!(cap.memory_growing(0, 4 << 20, None).unwrap());
        assert!(!cap.hit);
        let err = cap.memory_growing(4 << 20, 8 << 20, None).unwrap_err();
        assert!(err.to_string().contains("memory cap of 10 MiB"), "{err}");
        assert!(cap.hit);
    }

    #[test]
    fn overrides_replace_only_what_they_name() {
        let base = Limits {
            deadline: Duration::from_millis(50),
            memory_bytes: 64 << 20,
            max_findings: 100,
            max_output_bytes: 1000,
        };
        let o = DetectorOverride {
            memory_mib: Some(256),
            ..Default::default()
        };
        let l = base.with(&o);
        assert_eq!(l.memory_bytes, 256 << 20);
        assert_eq!(l.deadline, Duration::from_millis(50));
    }
}
