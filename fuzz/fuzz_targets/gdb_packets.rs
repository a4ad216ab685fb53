//! A hostile gdb client against the gdb server (crates/gdb): whatever
//! packets arrive (register numbers, addresses and lengths of memory reads
//! and writes, breakpoints and watchpoints of any size, vCont actions,
//! reverse motions, monitor commands, interrupts), the server must answer
//! or refuse without panicking, and leave a machine that still runs.
//!
//! The input is the client's byte stream, cut into packets at every zero
//! byte; each is framed with a correct checksum (special bytes escaped) so
//! that the fuzzer reaches the server's handlers rather than gdbstub's
//! checksum check. A packet that is just 0x03 is sent raw (an interrupt).
//! The machine behind the server is small and live (two harts storing to
//! RAM, registers and memory writable), and goes forward only, a bounded
//! number of steps per motion.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind_hart::DebugHooks;
use rewind_machine::virtio::VirtioConfig;
use rewind_machine::{Firmware, KernelImage, Machine, MachineConfig, Round};
use rewind_session::{current_hart, Debuggee, Hooks, Motion, Stop};
use std::io;

/// Steps a forward motion may take at most.
const MOTION_STEPS: u64 = 20_000;

/// The client's stream, then the end of the connection.
struct Client {
    bytes: Vec<u8>,
    at: usize,
}

impl gdbstub::conn::Connection for Client {
    type Error = io::Error;

    fn write(&mut self, _byte: u8) -> io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl gdbstub::conn::ConnectionExt for Client {
    fn read(&mut self) -> io::Result<u8> {
        let byte = self.peek()?.ok_or(io::ErrorKind::UnexpectedEof)?;
        self.at += 1;
        Ok(byte)
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.bytes.get(self.at).copied())
    }
}

/// Frames each zero-separated chunk as a packet with a good checksum.
fn frame(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in data.split(|&b| b == 0) {
        if chunk == [3] {
            out.push(3);
            continue;
        }
        out.push(b'+');
        out.push(b'$');
        let mut sum = 0u8;
        for &b in chunk {
            let escaped: &[u8] = match b {
                b'$' | b'#' | b'}' | b'*' => &[b'}', b ^ 0x20],
                _ => std::slice::from_ref(&b),
            };
            for &e in escaped {
                sum = sum.wrapping_add(e);
                out.push(e);
            }
        }
        out.extend_from_slice(format!("#{sum:02x}").as_bytes());
    }
    out
}

/// A machine that goes forward only.
struct Forward {
    machine: Machine,
    hooks: Hooks,
}

impl Forward {
    fn new() -> Forward {
        // Skips the bytes a flat image's header would be read from, then
        // each hart stores a counter over a page of RAM for ever.
        let mut words = vec![0x0200_006fu32];
        words.extend([0; 7]);
        words.extend([
            0x0000_0397u32, // auipc t2, 0
            0x0010_0337,    // lui t1, 0x100
            0x0063_83b3,    // add t2, t2, t1
            0x0000_0e13,    // li t3, 0
            0x001e_0e13,    // loop: addi t3, t3, 1
            0x01c3_b023,    // sd t3, 0(t2)
            0xff9f_f06f,    // j loop
        ]);
        let program: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let machine = Machine::new(MachineConfig {
            mem_size: 4 << 20,
            harts: 2,
            firmware: Firmware::None,
            kernel: Some(KernelImage::Flat(program.into())),
            initrd: None,
            bootargs: String::new(),
            rtc_epoch_ns: 0,
            seed: 0,
            virtio: VirtioConfig::default(),
        })
        .expect("a small machine");
        Forward {
            machine,
            hooks: Hooks::default(),
        }
    }

    fn attach(&mut self, pass: Option<usize>, step: Option<(usize, u64)>) {
        for (id, hart) in self.machine.harts.iter_mut().enumerate() {
            let mut hooks = DebugHooks::default();
            hooks.breakpoints = self.hooks.breakpoints.clone();
            hooks.watches = self.hooks.watches.clone();
            if pass == Some(id) {
                hooks.pass_at_step = Some(hart.steps());
            }
            hooks.stop_at_step = step.filter(|(h, _)| *h == id).map(|(_, s)| s);
            hart.set_debug(Some(hooks));
        }
    }
}

impl Debuggee for Forward {
    fn machine(&self) -> &Machine {
        &self.machine
    }

    fn edit(&mut self) -> Result<&mut Machine, String> {
        Ok(&mut self.machine)
    }

    fn inspect(&mut self) -> &mut Machine {
        &mut self.machine
    }

    fn set_hooks(&mut self, hooks: Hooks) {
        self.hooks = hooks;
    }

    fn resume(&mut self, motion: Motion, interrupted: &mut dyn FnMut() -> bool) -> Stop {
        let step = match motion {
            Motion::ReverseContinue | Motion::ReverseStep { .. } => return Stop::HistoryStart,
            Motion::Step { hart } => self.machine.harts.get(hart).map(|h| (hart, h.steps() + 1)),
            Motion::Continue => None,
        };
        let pass = Some(current_hart(&self.machine));
        self.attach(pass, step);
        let end = self.machine.position() + MOTION_STEPS;
        let stop = loop {
            if interrupted() {
                break Stop::Interrupted;
            }
            match self.machine.run_round_until(Some(end)) {
                Round::Paused => break Stop::HistoryEnd,
                Round::Debug { hart } => {
                    let stop = self.machine.harts[hart]
                        .take_debug_stop()
                        .expect("a hart that stopped for its hooks says why");
                    break Stop::Hook { hart, stop };
                }
                Round::Stopped(_) => {
                    break Stop::Ended {
                        what: "stopped".into(),
                        code: 0,
                    }
                }
                Round::Idle { wake: u64::MAX } => {
                    break Stop::Ended {
                        what: "deadlock".into(),
                        code: 1,
                    }
                }
                Round::Idle { wake } => self.machine.skip_to(wake),
                Round::Running => {}
            }
        };
        for hart in &mut self.machine.harts {
            hart.set_debug(None);
        }
        stop
    }

    fn seek(&mut self, position: u64) -> Result<(), String> {
        let here = self.machine.position();
        if position < here || position - here > MOTION_STEPS {
            return Err("out of reach".into());
        }
        loop {
            match self.machine.run_round_until(Some(position)) {
                Round::Paused => return Ok(()),
                Round::Idle { wake: u64::MAX } | Round::Stopped(_) => {
                    return Err("the machine stopped".into())
                }
                Round::Idle { wake } => self.machine.skip_to(wake),
                Round::Running | Round::Debug { .. } => {}
            }
        }
    }

    fn bounds(&self) -> (u64, Option<u64>) {
        (0, None)
    }

    fn describe(&self) -> String {
        "a fuzzed machine".into()
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let mut forward = Forward::new();
    let client = Client {
        bytes: frame(data),
        at: 0,
    };
    let _ = rewind_gdb::serve(&mut forward, client);
    // Whatever the client did, the machine still runs.
    let position = forward.machine.position();
    let _ = forward.seek(position + 1_000);
    let _ = forward.machine.state_hash();
});
