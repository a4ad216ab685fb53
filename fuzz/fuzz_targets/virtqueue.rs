//! Guest RAM and a queue configuration from the fuzzer: a driver sets a
//! virtio device up through the virtio-mmio registers with that
//! configuration, notifies its queues and offers it input, and the device
//! walks whatever descriptor chains and requests the bytes describe. Nothing
//! a hostile guest writes may panic the host or reach outside guest RAM.
//!
//! Input layout: 16 bytes of configuration, then guest RAM (at most 64 KiB,
//! at 0x8000_0000):
//! - byte 0: the device (blk, read-only blk, net, console, seeded rng, host rng)
//! - byte 1: feature choices (bit 0: accept INDIRECT_DESC; bit 1: accept nothing
//!   but VERSION_1; bit 2: put the rings at addresses outside RAM)
//! - bytes 2-3: queue size (QueueNum), little-endian
//! - bytes 4-9: offsets in RAM of the descriptor table, avail and used rings
//! - byte 10: how many times to notify; byte 11: which queue first
//! - bytes 12-15: the length of the input offered afterwards (frame, console
//!   bytes, entropy), taken from the end of RAM
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind_hart::Ram;
use rewind_machine::virtio::blk::{Blk, MemDisk};
use rewind_machine::virtio::mmio::*;
use rewind_machine::virtio::net::{default_mac, Net};
use rewind_machine::virtio::rng::{Entropy, Rng};
use rewind_machine::virtio::{console::Console, Device, Virtio};

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: u64 = 64 << 10;

fn device(kind: u8) -> Device {
    let disk = |read_only| {
        let bytes = (0..16 * 512).map(|i| i as u8).collect();
        Device::Blk(Blk::new(0, Box::new(MemDisk { bytes, read_only })))
    };
    match kind % 6 {
        0 => disk(false),
        1 => disk(true),
        2 => Device::Net(Net::new(0, default_mac(0))),
        3 => Device::Console(Console::default()),
        4 => Device::Rng(Rng::new(Entropy::Seeded, 1)),
        _ => Device::Rng(Rng::new(Entropy::Host, 1)),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let (cfg, image) = data.split_at(16);
    let mut ram = Ram::new(RAM_BASE, RAM_SIZE);
    let len = image.len().min(RAM_SIZE as usize);
    ram.write_bytes(RAM_BASE, &image[..len])
        .expect("fits in RAM");

    let mut v = Virtio::new(vec![device(cfg[0])]);
    let w = |v: &mut Virtio, ram: &mut Ram, off: u64, value: u64| {
        assert!(v.write(ram, off, 4, value), "virtio writes never fault");
    };
    let choices = cfg[1];
    w(&mut v, &mut ram, STATUS, 3);
    w(&mut v, &mut ram, DEVICE_FEATURES_SEL, 0);
    let low = v.read(DEVICE_FEATURES, 4).unwrap_or(0);
    let accept_low = if choices & 1 != 0 {
        low
    } else {
        low & !(1 << 28)
    };
    let accept_low = if choices & 2 != 0 { 0 } else { accept_low };
    w(&mut v, &mut ram, DRIVER_FEATURES_SEL, 0);
    w(&mut v, &mut ram, DRIVER_FEATURES, accept_low);
    w(&mut v, &mut ram, DRIVER_FEATURES_SEL, 1);
    w(&mut v, &mut ram, DRIVER_FEATURES, 1);
    w(&mut v, &mut ram, STATUS, 0xb);

    let size = u16::from_le_bytes([cfg[2], cfg[3]]) as u64;
    let far = if choices & 4 != 0 {
        0xffff_ffff_0000_0000
    } else {
        0
    };
    let at =
        |i: usize| RAM_BASE.wrapping_add(far) + u16::from_le_bytes([cfg[i], cfg[i + 1]]) as u64;
    let queues = 2;
    for q in 0..queues {
        w(&mut v, &mut ram, QUEUE_SEL, q);
        w(&mut v, &mut ram, QUEUE_NUM, size);
        for (reg, addr) in [
            (QUEUE_DESC_LOW, at(4)),
            (QUEUE_DRIVER_LOW, at(6)),
            (QUEUE_DEVICE_LOW, at(8)),
        ] {
            // Each queue gets its own area so two queues do not share rings.
            let addr = addr.wrapping_add(q * 0x2000);
            w(&mut v, &mut ram, reg, addr & 0xffff_ffff);
            w(&mut v, &mut ram, reg + 4, addr >> 32);
        }
        w(&mut v, &mut ram, QUEUE_READY, 1);
    }
    w(&mut v, &mut ram, STATUS, 0xf);

    for i in 0..cfg[10].min(8) as u64 {
        w(&mut v, &mut ram, QUEUE_NOTIFY, (cfg[11] as u64 + i) % 3);
    }
    let input_len = (u32::from_le_bytes([cfg[12], cfg[13], cfg[14], cfg[15]]) as usize).min(len);
    let input = &image[len - input_len..len];
    let _ = v.push_net_frame(&mut ram, 0, input);
    let _ = v.push_hvc_input(&mut ram, input);
    let _ = v.entropy_wanted(&mut ram);
    let _ = v.push_entropy(&mut ram, input);
    let _ = v.take_net_frames(0);
    let _ = v.take_hvc_output();
    let _ = v.take_warnings();
    for off in (0..0x110).step_by(4) {
        let _ = v.read(off, 4);
    }
    assert_eq!(ram.size(), RAM_SIZE);
});
