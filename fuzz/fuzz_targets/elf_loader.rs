//! Any byte string given as a kernel image yields an image or one error,
//! never a panic, and loading never writes outside RAM.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind_hart::Ram;
use rewind_machine::loader::{load_segments, parse_elf};

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = parse_elf("fuzz.elf", data) {
        let mut ram = Ram::new(0x8000_0000, 1 << 20);
        let _ = load_segments("fuzz.elf", &image.segments, &mut ram);
    }
});
