//! Reading large files into fresh memory quickly.
//!
//! A process that has just started has no memory to reuse: every 4 KiB page
//! of a buffer it reads a file into costs a page fault on first touch, and on
//! a virtualized host a fault costs microseconds. For the tens of MiB of a
//! snapshot or a kernel that is most of the time reading takes (measured on
//! a 2-core KVM guest: 32 MB in 15-16 ms; 3.5-4.5 ms with huge pages). So
//! buffers that are about to be filled whole ask the kernel for transparent
//! huge pages, which fault 2 MiB at a time. Guest RAM does not: it is
//! written sparsely, so 2 MiB faults would zero far more than is used, and
//! restores measured with it varied from 35 to 165 ms (compaction stalls).

use std::io::{self, Read};
use std::path::Path;

/// Huge pages are 2 MiB on the hosts Rewind runs on (x86-64, arm64 with
/// 4 KiB pages); advice for a range they do not fit is simply not taken.
const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back `buffer` with transparent huge pages where whole
/// ones fit, before it is first written. Only advice: if the kernel does not
/// take it (no THP support, a non-Linux host) nothing changes but speed.
fn advise_huge_pages<T>(buffer: &mut [T]) {
    #[cfg(target_os = "linux")]
    {
        let start = buffer.as_mut_ptr() as usize;
        let end = start + std::mem::size_of_val(buffer);
        let first = start.next_multiple_of(HUGE_PAGE);
        let last = end & !(HUGE_PAGE - 1);
        if first < last {
            // SAFETY: [first, last) lies within `buffer`, which this function
            // borrows mutably, and MADV_HUGEPAGE changes neither its contents
            // nor its mapping's validity, only how the kernel backs it.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buffer;
}

/// Reads the whole file at `path` (see the module comment for why not
/// `std::fs::read`).
pub fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let len = usize::try_from(file.metadata()?.len())
        .map_err(|_| io::Error::other("it is too large for this host"))?;
    // vec! of zeros asks the allocator for zeroed memory, which for a large
    // buffer is a fresh mapping not yet touched: the advice comes in time.
    let mut bytes = vec![0u8; len];
    advise_huge_pages(&mut bytes);
    file.read_exact(&mut bytes)?;
    // A file that grew while it was read: take the rest as std::fs::read
    // would, rather than a silently cut copy.
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // names a scratch directory
    fn reads_whole_files_of_any_size() {
        let dir = std::env::temp_dir().join(format!("rewind-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for len in [0usize, 1, 4095, 3 * HUGE_PAGE + 17] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4096) as u8).collect();
            let path = dir.join(format!("f{len}"));
            std::fs::write(&path, &data).unwrap();
            assert_eq!(read_file(&path).unwrap(), data);
        }
        assert!(read_file(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
