//! Cranelift's incremental compilation cache for `edgeward dev`: every saved edit of a Python or
//! JavaScript function is a new 13–19 MB component, yet the componentizers relink the same
//! interpreter each time, so almost every function body is identical between builds. Wasmtime
//! hands each function's compiled code to this store keyed by the function's own IR; an
//! unchanged function is then copied, not compiled again.
//!
//! Bounded in memory (the entries' bytes, least-recently-used first out) and, when given a file,
//! kept on disk between runs of `dev` (written after each compile, loaded at start; an entry
//! that does not fit the running compiler is simply a miss: Cranelift checks its own version in
//! every value). Never used by `serve`: production compiles are not shared across components.

use std::borrow::Cow;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The first bytes of the cache file, with its format's version.
const MAGIC: &[u8; 8] = b"EWCC\x00\x00\x00\x01";

/// Hits and misses since the cache was made (monotonic; subtract two readings for one compile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Functions whose compiled code came from the cache.
    pub hits: u64,
    /// Functions compiled (and then offered to the cache).
    pub misses: u64,
}

impl CacheStats {
    /// What happened between `before` and `self`.
    pub fn since(self, before: CacheStats) -> CacheStats {
        CacheStats {
            hits: self.hits.saturating_sub(before.hits),
            misses: self.misses.saturating_sub(before.misses),
        }
    }
}

/// The store of compiled functions (see the module's documentation).
pub struct CompileCache {
    entries: moka::sync::Cache<Vec<u8>, Arc<[u8]>>,
    file: Option<PathBuf>,
    /// One writer of the file at a time.
    saving: std::sync::Mutex<()>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileCache")
            .field("entries", &self.entries.entry_count())
            .field("bytes", &self.entries.weighted_size())
            .field("file", &self.file)
            .field("stats", &self.stats())
            .finish()
    }
}

impl CompileCache {
    /// An empty cache of at most `max_bytes` (keys and values), kept only in memory.
    pub fn in_memory(max_bytes: u64) -> CompileCache {
        CompileCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|k: &Vec<u8>, v: &Arc<[u8]>| {
                    u32::try_from(k.len() + v.len()).unwrap_or(u32::MAX)
                })
                .build(),
            file: None,
            saving: std::sync::Mutex::new(()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A cache of at most `max_bytes` kept in `file`: what the file holds is loaded now (a
    /// missing, truncated or foreign file is an empty cache, not an error), and
    /// [`CompileCache::save`] writes it back.
    pub fn with_file(file: PathBuf, max_bytes: u64) -> CompileCache {
        let mut cache = CompileCache::in_memory(max_bytes);
        if let Ok(f) = std::fs::File::open(&file) {
            let mut reader = BufReader::new(f);
            if let Err(e) = cache.load(&mut reader) {
                tracing::debug!(file = %file.display(), error = %e, "compile cache not loaded");
            }
        }
        cache.file = Some(file);
        cache
    }

    fn load(&self, reader: &mut impl Read) -> std::io::Result<()> {
        let mut magic = [0u8; 8];
        reader.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(std::io::Error::other("not an edgeward compile cache"));
        }
        let mut len = [0u8; 4];
        loop {
            match reader.read_exact(&mut len) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
            let mut key = vec![0u8; u32::from_le_bytes(len) as usize];
            reader.read_exact(&mut key)?;
            reader.read_exact(&mut len)?;
            let mut value = vec![0u8; u32::from_le_bytes(len) as usize];
            reader.read_exact(&mut value)?;
            self.entries.insert(key, Arc::from(value));
        }
    }

    /// Writes the cache to its file (under a temporary name, then renamed), if it has one.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let _one_writer = self.saving.lock().unwrap_or_else(|e| e.into_inner());
        self.entries.run_pending_tasks();
        let temporary = file.with_extension("tmp");
        let write = |path: &Path| -> std::io::Result<()> {
            let file = std::os::unix::fs::OpenOptionsExt::mode(
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true),
                0o600,
            )
            .open(path)?;
            let mut out = BufWriter::new(file);
            out.write_all(MAGIC)?;
            for (key, value) in self.entries.iter() {
                let (Ok(k), Ok(v)) = (u32::try_from(key.len()), u32::try_from(value.len())) else {
                    continue;
                };
                out.write_all(&k.to_le_bytes())?;
                out.write_all(&key)?;
                out.write_all(&v.to_le_bytes())?;
                out.write_all(&value)?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        };
        write(&temporary)?;
        std::fs::rename(&temporary, file)
    }

    /// Hits and misses so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// The entries' bytes (keys and values) held now.
    pub fn bytes(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.weighted_size()
    }
}

impl wasmtime::CacheStore for CompileCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        // (Allocates the key to look it up: a few hundred bytes per function, against
        // compiling it.)
        match self.entries.get(key) {
            Some(value) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(Cow::Owned(value.to_vec()))
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        self.entries.insert(key.to_vec(), Arc::from(value));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::CacheStore;

    #[test]
    fn counts_hits_and_misses_and_survives_a_round_trip_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("compile-cache");
        let cache = CompileCache::with_file(file.clone(), 1 << 20);
        assert!(cache.get(b"f1").is_none());
        assert!(cache.insert(b"f1", b"code one".to_vec()));
        assert_eq!(cache.get(b"f1").as_deref(), Some(&b"code one"[..]));
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 1 });
        cache.save().unwrap();

        let again = CompileCache::with_file(file.clone(), 1 << 20);
        assert_eq!(again.get(b"f1").as_deref(), Some(&b"code one"[..]));
        assert!(again.get(b"f2").is_none());
        assert_eq!(again.stats(), CacheStats { hits: 1, misses: 1 });

        // A file that is not ours, or cut short, is an empty (or partial) cache, not an error.
        std::fs::write(&file, b"garbage").unwrap();
        assert!(
            CompileCache::with_file(file.clone(), 1 << 20)
                .get(b"f1")
                .is_none()
        );
    }

    #[test]
    fn is_bounded_by_its_bytes() {
        let cache = CompileCache::in_memory(64 << 10);
        for i in 0..64u32 {
            cache.insert(&i.to_le_bytes(), vec![0u8; 4 << 10]);
        }
        assert!(cache.bytes() <= 64 << 10, "{} bytes", cache.bytes());
    }
}
