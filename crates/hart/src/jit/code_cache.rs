//! Executable memory for translated blocks, never writable and executable
//! at once (W^X): one shared memory object mapped twice, once writable for
//! the translator and once executable for the hart, at different
//! addresses. Code is appended; when the cache is full, everything goes and
//! translation starts again (the blocks that still run are translated
//! anew), which bounds its memory.

use std::ptr::NonNull;

/// A bounded region of translated code.
pub(crate) struct CodeCache {
    write: NonNull<u8>,
    exec: NonNull<u8>,
    size: usize,
    used: usize,
    /// Bumped each time the cache is emptied: code from an older
    /// generation must not run.
    generation: u32,
}

// SAFETY: the cache owns its two mappings outright; nothing else refers to
// them, and a hart (with its cache) moves between threads only as a whole.
unsafe impl Send for CodeCache {}

/// Why the cache could not be made (the host refused memory).
#[derive(Debug)]
pub(crate) struct NoCodeCache(pub String);

impl CodeCache {
    /// A cache of `size` bytes (a multiple of the host page size).
    pub(crate) fn new(size: usize) -> Result<Self, NoCodeCache> {
        let name = c"rewind-jit";
        // SAFETY: memfd_create takes a NUL-terminated name and flags; it
        // returns a new descriptor or -1.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(NoCodeCache(std::io::Error::last_os_error().to_string()));
        }
        let fail = |what: &str| {
            let e = std::io::Error::last_os_error();
            // SAFETY: `fd` is ours and open.
            unsafe { libc::close(fd) };
            NoCodeCache(format!("{what}: {e}"))
        };
        // SAFETY: `fd` is a fresh memfd; ftruncate only sizes it.
        if unsafe { libc::ftruncate(fd, size as libc::off_t) } != 0 {
            return Err(fail("sizing the code cache"));
        }
        let map = |prot| {
            // SAFETY: a new shared mapping of the whole memfd at an address
            // the kernel picks; it aliases nothing Rust owns.
            let p =
                unsafe { libc::mmap(std::ptr::null_mut(), size, prot, libc::MAP_SHARED, fd, 0) };
            (p != libc::MAP_FAILED)
                .then(|| NonNull::new(p.cast::<u8>()))
                .flatten()
        };
        let Some(write) = map(libc::PROT_READ | libc::PROT_WRITE) else {
            return Err(fail("mapping the code cache"));
        };
        let Some(exec) = map(libc::PROT_READ | libc::PROT_EXEC) else {
            // SAFETY: `write` is the mapping just made, of `size` bytes.
            unsafe { libc::munmap(write.as_ptr().cast(), size) };
            return Err(fail("mapping the code cache executable"));
        };
        // SAFETY: both mappings keep the memory object alive.
        unsafe { libc::close(fd) };
        Ok(CodeCache {
            write,
            exec,
            size,
            used: 0,
            generation: 0,
        })
    }

    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }

    /// Empties the cache: every block translated so far is dropped.
    pub(crate) fn clear(&mut self) {
        self.used = 0;
        self.generation = self.generation.wrapping_add(1);
    }

    /// Copies `code`, assembled to run at [`CodeCache::next_address`], in;
    /// returns its executable address, or None if it does not fit.
    pub(crate) fn add(&mut self, code: &[u8]) -> Option<usize> {
        // Entry points 16-byte aligned, as compilers align functions.
        let start = self.used.next_multiple_of(16);
        if start > self.size || code.len() > self.size - start {
            return None;
        }
        // SAFETY: [start, start + len) lies inside the writable mapping,
        // which nothing else reads or writes while this copy runs (the hart
        // that owns the cache is not running translated code now).
        unsafe {
            std::ptr::copy_nonoverlapping(
                code.as_ptr(),
                self.write.as_ptr().add(start),
                code.len(),
            );
        }
        self.used = start + code.len();
        Some(self.exec.as_ptr() as usize + start)
    }
}

impl Drop for CodeCache {
    fn drop(&mut self) {
        // SAFETY: the two mappings made in `new`, of `size` bytes each; no
        // code from them runs any more (the hart owning the cache is gone).
        unsafe {
            libc::munmap(self.write.as_ptr().cast(), self.size);
            libc::munmap(self.exec.as_ptr().cast(), self.size);
        }
    }
}
