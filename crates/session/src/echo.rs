//! The guest's console output in a replay under a debugger, shown once.
//!
//! A debugged replay runs stretches of the recording again and again (every
//! reverse motion restores a checkpoint and replays forward). The user
//! should see the guest's output as the machine first gets there, as a
//! live run shows it, and not again each time the past is replayed. So the
//! output is counted in bytes per port from the start of the timeline: the
//! count at each checkpoint is kept, a restore puts the count back, and
//! only bytes past the most ever shown reach the console. The count at a
//! position does not depend on how the replay got there, because the
//! drive loop hands all output to the console whenever it pauses, and the
//! timeline only takes checkpoints and restores at pauses.

use crate::console::{Console, PortId};
use std::collections::BTreeMap;

/// Bytes per port: the serial console's, then hvc0's.
type Counts = [u64; 2];

fn slot(port: PortId) -> usize {
    match port {
        PortId::Serial => 0,
        PortId::Hvc => 1,
    }
}

/// A console that shows only output not shown before (see the module).
pub struct Echo {
    console: Box<dyn Console>,
    /// Bytes the guest wrote from the timeline's start to where the
    /// machine is now.
    written: Counts,
    /// The most ever shown.
    shown: Counts,
    /// `written` at each checkpoint's position.
    at_checkpoint: BTreeMap<u64, Counts>,
}

impl Echo {
    /// Shows on `console`, counting from the timeline's start.
    pub fn new(console: Box<dyn Console>) -> Self {
        Echo {
            console,
            written: [0; 2],
            shown: [0; 2],
            at_checkpoint: BTreeMap::new(),
        }
    }

    /// A checkpoint was taken at `position`, where the machine is.
    pub fn checkpoint_taken(&mut self, position: u64) {
        self.at_checkpoint.insert(position, self.written);
    }

    /// The machine was put back at the checkpoint at `position`.
    pub fn restored(&mut self, position: u64) {
        // A checkpoint taken before output was counted is the start.
        self.written = self.at_checkpoint.get(&position).copied().unwrap_or([0; 2]);
    }
}

impl Console for Echo {
    fn write(&mut self, port: PortId, bytes: &[u8]) {
        let i = slot(port);
        let before = self.written[i];
        self.written[i] += bytes.len() as u64;
        if self.written[i] > self.shown[i] {
            let new = (self.shown[i].saturating_sub(before)) as usize;
            self.console.write(port, &bytes[new..]);
            self.shown[i] = self.written[i];
        }
    }
    fn output_count(&self) -> u64 {
        self.written.iter().sum()
    }
    // The rest as the trait has it: a replay takes no input and no console
    // commands (gdb drives it).
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Each write a console was shown.
    type Writes = Vec<(PortId, Vec<u8>)>;

    /// A console that keeps what it is shown.
    #[derive(Clone, Default)]
    struct Screen(Arc<Mutex<Writes>>);

    impl Console for Screen {
        fn write(&mut self, port: PortId, bytes: &[u8]) {
            self.0.lock().unwrap().push((port, bytes.to_vec()));
        }
        fn output_count(&self) -> u64 {
            0
        }
    }

    fn shown(screen: &Screen, port: PortId) -> String {
        let writes = screen.0.lock().unwrap();
        let bytes: Vec<u8> = writes
            .iter()
            .filter(|(p, _)| *p == port)
            .flat_map(|(_, b)| b.clone())
            .collect();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn the_past_replayed_again_is_not_shown_again() {
        let screen = Screen::default();
        let mut echo = Echo::new(Box::new(screen.clone()));
        echo.checkpoint_taken(0);
        echo.write(PortId::Serial, b"boot ");
        echo.write(PortId::Hvc, b"h1 ");
        echo.checkpoint_taken(100);
        echo.write(PortId::Serial, b"login: ");
        // Back to 100, and forward further than before, split otherwise.
        echo.restored(100);
        echo.write(PortId::Serial, b"log");
        echo.write(PortId::Serial, b"in: root");
        echo.write(PortId::Hvc, b"h2");
        // Back to the start: nothing new until past what was shown.
        echo.restored(0);
        echo.write(PortId::Serial, b"boot login: root");
        echo.write(PortId::Hvc, b"h1 h2 h3");
        assert_eq!(shown(&screen, PortId::Serial), "boot login: root");
        assert_eq!(shown(&screen, PortId::Hvc), "h1 h2 h3");
    }
}
