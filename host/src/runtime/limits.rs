//! Per-instance resource limits that remember which one was hit, so an execution that ran out
//! of memory is recorded as such rather than as a generic trap.

use wasmtime::ResourceLimiter;

/// Memory and table limits for one store.
#[derive(Debug)]
pub struct GuestLimits {
    memory_bytes: usize,
    table_elements: usize,
    /// Set when a memory growth was refused.
    pub hit_memory: bool,
}

impl GuestLimits {
    /// Limits of `memory_bytes` of linear memory per memory and `table_elements` per table.
    pub fn new(memory_bytes: usize, table_elements: usize) -> GuestLimits {
        GuestLimits {
            memory_bytes,
            table_elements,
            hit_memory: false,
        }
    }
}

impl ResourceLimiter for GuestLimits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.memory_bytes && maximum.is_none_or(|m| desired <= m);
        if !ok {
            self.hit_memory = true;
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements && maximum.is_none_or(|m| desired <= m))
    }

    fn instances(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        4
    }
}
