//! Any bytes given as a disk image (raw or qcow2, detected by content) or as
//! a saved overlay file yield a disk or one error, never a panic, and reads
//! stay inside the bytes given. The input is also its own first backing file
//! (so chains and loops are exercised), and a raw copy of it the next one.
#![no_main]

use std::io;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use rewind_disk::{read_overlay_file, Disk, Image, ImageSource, Opener, OVERLAY_MAGIC};

struct Backing {
    data: Vec<u8>,
    opened: usize,
}

impl Opener for Backing {
    fn open(&mut self, path: &Path) -> io::Result<(PathBuf, Box<dyn ImageSource>)> {
        self.opened += 1;
        let mut bytes = self.data.clone();
        if self.opened > 1 {
            // Not qcow2 any more: the chain ends in a raw image.
            if let Some(b) = bytes.first_mut() {
                *b ^= 0xff;
            }
        }
        Ok((path.to_owned(), Box::new(bytes)))
    }
}

fuzz_target!(|data: &[u8]| {
    if data.starts_with(&OVERLAY_MAGIC) {
        // The parser alone: blocks are checked and dropped, so no host file
        // is written per input.
        let _ = read_overlay_file(
            Path::new("fuzz.overlay"),
            &mut &data[..],
            data.len() as u64,
            &mut |_| Ok(()),
            &mut |_, _| Ok(()),
        );
        return;
    }
    let mut backing = Backing {
        data: data.to_vec(),
        opened: 0,
    };
    let Ok(image) = Image::from_source(
        Path::new("fuzz.qcow2"),
        Box::new(data.to_vec()),
        &mut backing,
    ) else {
        return;
    };
    let size = image.size();
    // The overlay's file goes in the temporary directory and is gone with
    // the disk.
    let Ok(mut disk) = Disk::from_image(image, false) else {
        return;
    };
    let len = size.min(256 << 10);
    let mut buf = vec![0u8; len as usize];
    let middle = (size / 2).min(size - len);
    for offset in [0, middle, size - len] {
        let _ = disk.read_at(offset, &mut buf);
    }
    // A write that is not block-aligned reads the base around it.
    let short = len.min(5000) as usize;
    let _ = disk.write_at(middle + len - short as u64, &buf[..short]);
    let _ = disk.read_at(middle, &mut buf);
});
