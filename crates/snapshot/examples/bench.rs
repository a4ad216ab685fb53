//! Speed and size of snapshots of a synthetic 1 GiB guest RAM.
//!
//!     cargo run --release -p rewind-snapshot --example bench -- [--untouched] [--mib N] [--image FILE]
//!
//! The RAM mix: 70% zero pages, 6% copies of 32 common pages, 16% unique but
//! compressible pages (text and kernel-like structures), 8% random pages.
//! Zero pages are written (resident) unless --untouched, which leaves them as
//! never-touched memory, like guest RAM the guest has not used yet.
//!
//! --image FILE takes RAM from a file instead, e.g. a real guest's memory
//! saved by QEMU's monitor: `pmemsave 0x80000000 0x40000000 FILE` (with -m 1G)
//! once the guest has booted to its shell prompt. With --untouched, only its
//! non-zero pages are copied into fresh memory.
//!
//! Each figure is the best of three runs, so that other work on the machine
//! disturbs it less.
//!
//!     cargo run --release -p rewind-snapshot --example bench -- --snapshot FILE [--threads N] [--runs N] [--keep OUT]
//!
//! --snapshot FILE takes RAM and components from a snapshot instead (a full
//! one of a real guest, of any format version this crate reads), restored
//! into fresh memory; then it writes a full snapshot of that RAM (its
//! non-zero pages, as `Pages::AllOf`) to a file and reads it back, N runs of
//! each (default 5), and prints the median and the spread: file size, write
//! time, and open + apply time into fresh RAM known to be zero. --threads
//! (default 2) is used by writing, checking and applying alike; --keep saves
//! the file written.

// A benchmark runs on the host and times it; nothing here reaches a machine.
#![allow(clippy::disallowed_methods)]
// Measuring host time is this program's job; it holds no guest state.
#![allow(clippy::disallowed_types)]

use std::time::{Duration, Instant};

use rewind_snapshot::{ApplyOptions, Pages, Snapshot, SnapshotChain, SnapshotWriter, PAGE_SIZE};

const P: usize = PAGE_SIZE;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, bytes: &mut [u8]) {
        for chunk in bytes.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Text made of common words.
fn text_page(rng: &mut Rng, page: &mut [u8]) {
    const WORDS: &[&[u8]] = &[
        b"the ", b"kernel ", b"struct ", b"page ", b"0x0000 ", b"return ", b"if ", b"int ",
        b"memory ", b"init ", b"{ ", b"} ", b"\n", b"device ", b"irq ", b"NULL ", b"static ",
    ];
    let mut i = 0;
    while i < page.len() {
        for &b in WORDS[(rng.next() % WORDS.len() as u64) as usize] {
            if i < page.len() {
                page[i] = b;
                i += 1;
            }
        }
    }
}

/// 64-bit words as in kernel data: zeros, small numbers, kernel pointers.
fn struct_page(rng: &mut Rng, page: &mut [u8]) {
    for word in page.chunks_exact_mut(8) {
        let r = rng.next();
        let v = match r % 4 {
            0 => 0,
            1 => r >> 56,
            2 => 0xffff_ffd8_0000_0000 | ((r >> 20) & 0x0fff_fff8),
            _ => r & 0xffff,
        };
        word.copy_from_slice(&v.to_le_bytes());
    }
}

fn make_ram(pages: usize, touch_zero: bool) -> Vec<u8> {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    // Pools keep generation fast; each use is stamped to make it unique.
    let mut pool = vec![0u8; 512 * P];
    for (i, page) in pool.chunks_mut(P).enumerate() {
        if i % 2 == 0 {
            text_page(&mut rng, page)
        } else {
            struct_page(&mut rng, page)
        }
    }
    let mut ram = vec![0u8; pages * P];
    for p in 0..pages {
        let page = &mut ram[p * P..(p + 1) * P];
        match rng.next() % 100 {
            0..=69 => {
                if touch_zero {
                    page.fill(0);
                }
            }
            70..=75 => {
                let c = (rng.next() % 32) as usize;
                page.copy_from_slice(&pool[c * P..(c + 1) * P]);
            }
            76..=91 => {
                let c = (rng.next() % 512) as usize;
                page.copy_from_slice(&pool[c * P..(c + 1) * P]);
                let at = (rng.next() % (P as u64 / 8 - 2)) as usize * 8;
                page[at..at + 8].copy_from_slice(&(p as u64).to_le_bytes());
                page[at + 8..at + 16].copy_from_slice(&rng.next().to_le_bytes());
            }
            _ => rng.fill(page),
        }
    }
    ram
}

/// Runs `f` three times on what `setup` makes (untimed); returns the first
/// and the best time, and the last result.
fn timed<T>(setup: impl Fn() -> T, mut f: impl FnMut(&mut T)) -> (Duration, Duration, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let mut value = setup();
        let t = Instant::now();
        f(&mut value);
        times.push(t.elapsed());
        last = Some(value);
    }
    let best = times.iter().min().copied().unwrap();
    (times[0], best, last.unwrap())
}

fn ms(d: Duration) -> String {
    format!("{:7.1} ms", d.as_secs_f64() * 1e3)
}

/// The value after `--name`, if given.
fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
}

/// Median, lowest and highest of `times`.
fn spread(mut times: Vec<Duration>) -> String {
    times.sort_unstable();
    format!(
        "median {} (min {}, max {})",
        ms(times[times.len() / 2]).trim(),
        ms(times[0]).trim(),
        ms(times[times.len() - 1]).trim()
    )
}

/// The `--snapshot FILE` mode: rewrites the RAM of a real snapshot.
fn from_snapshot(args: &[String], path: &str) {
    let threads: usize = arg(args, "--threads").map_or(2, |v| v.parse().unwrap());
    let runs: usize = arg(args, "--runs").map_or(5, |v| v.parse().unwrap());
    let source = Snapshot::open(path).expect("cannot read the snapshot");
    assert!(!source.is_incremental(), "give a full snapshot");
    let mut ram = vec![0u8; source.ram_size() as usize];
    source
        .apply_pages_with(
            &mut ram,
            ApplyOptions {
                threads,
                ram_is_zeroed: true,
            },
        )
        .unwrap();
    let pages: Vec<usize> = source.page_indices().map(|p| p as usize).collect();
    let components: Vec<(String, Vec<u8>)> = source
        .components()
        .map(|(n, d)| (n.to_string(), d.to_vec()))
        .collect();
    println!(
        "{path}: {} bytes, RAM {} MiB, {} non-zero pages ({:.1} MB), {} distinct",
        std::fs::metadata(path).unwrap().len(),
        ram.len() >> 20,
        pages.len(),
        (pages.len() * P) as f64 / 1e6,
        source.unique_page_count()
    );
    drop(source);

    let out =
        std::env::temp_dir().join(format!("rewind-snapshot-bench-{}.rws", std::process::id()));
    let writer = SnapshotWriter::new().threads(threads);
    let mut write_times = Vec::new();
    for _ in 0..runs {
        let _ = std::fs::remove_file(&out);
        let t = Instant::now();
        let file = std::fs::File::create(&out).unwrap();
        writer
            .write(file, &components, &ram, Pages::AllOf(&pages))
            .unwrap();
        write_times.push(t.elapsed());
    }
    let size = std::fs::metadata(&out).unwrap().len();
    let mut apply_times = Vec::new();
    for _ in 0..runs {
        let mut target = vec![0u8; ram.len()];
        let t = Instant::now();
        let snap = Snapshot::open(&out).unwrap();
        snap.apply_pages_with(
            &mut target,
            ApplyOptions {
                threads,
                ram_is_zeroed: true,
            },
        )
        .unwrap();
        apply_times.push(t.elapsed());
        assert!(target == ram, "restore differs");
    }
    println!(
        "written, {threads} thread(s): {size} bytes ({:.1} MB, {:.2}% of the non-zero pages)",
        size as f64 / 1e6,
        100.0 * size as f64 / (pages.len() * P) as f64
    );
    println!("write to a file, {runs} runs:      {}", spread(write_times));
    println!(
        "open + apply, fresh RAM, {runs} runs: {}",
        spread(apply_times)
    );
    match arg(args, "--keep") {
        Some(keep) => std::fs::rename(&out, keep)
            .or_else(|_| std::fs::copy(&out, keep).and_then(|_| std::fs::remove_file(&out)))
            .unwrap(),
        None => std::fs::remove_file(&out).unwrap(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(path) = arg(&args, "--snapshot") {
        from_snapshot(&args, path);
        return;
    }
    let untouched = args.iter().any(|a| a == "--untouched");
    let mib: usize = args
        .iter()
        .position(|a| a == "--mib")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let image = args
        .iter()
        .position(|a| a == "--image")
        .and_then(|i| args.get(i + 1));
    let t = Instant::now();
    let ram = match image {
        Some(path) => {
            let image = std::fs::read(path).expect("cannot read the RAM image");
            if untouched {
                // Copy only the non-zero pages into fresh memory.
                let mut ram = vec![0u8; image.len()];
                for (dst, src) in ram.chunks_mut(P).zip(image.chunks(P)) {
                    if src.iter().any(|&b| b != 0) {
                        dst.copy_from_slice(src);
                    }
                }
                ram
            } else {
                image
            }
        }
        None => make_ram(mib * 1024 * 1024 / P, !untouched),
    };
    let (mib, pages) = (ram.len() >> 20, ram.len() / P);
    println!(
        "RAM: {mib} MiB, zero pages {}; made in {}",
        if untouched {
            "never touched"
        } else {
            "resident"
        },
        ms(t.elapsed())
    );
    let components: Vec<(String, Vec<u8>)> = (0..20)
        .map(|i| (format!("device{i}"), vec![i as u8; 4096]))
        .collect();

    let threads = rewind_snapshot::default_threads();
    let mut full = Vec::new();
    for t in [1, threads] {
        let writer = SnapshotWriter::new().threads(t);
        let (first, best, file) = timed(
            || Vec::with_capacity(256 << 20),
            |file| {
                writer
                    .write(&mut *file, &components, &ram, Pages::All)
                    .unwrap();
            },
        );
        println!(
            "full write, {t} thread(s):             {} (first run {})  -> {:.1} MiB, {:.2}% of RAM",
            ms(best),
            ms(first),
            file.len() as f64 / 1048576.0,
            100.0 * file.len() as f64 / ram.len() as f64
        );
        full = file;
    }
    let path =
        std::env::temp_dir().join(format!("rewind-snapshot-bench-{}.rws", std::process::id()));
    let (_, best, _) = timed(
        || (),
        |_| {
            let file = std::fs::File::create(&path).unwrap();
            SnapshotWriter::new()
                .write(file, &components, &ram, Pages::All)
                .unwrap();
        },
    );
    println!("full write to a file, {threads} thread(s):   {}", ms(best));
    let (_, best, _) = timed(|| (), |_| drop(Snapshot::open(&path).unwrap()));
    println!("open (read + check) that file:        {}", ms(best));
    std::fs::remove_file(&path).unwrap();

    let snap = Snapshot::from_bytes(full.clone(), "full.rws").unwrap();
    println!(
        "  it holds {} non-zero pages ({} MiB), {} of them distinct",
        snap.page_indices().len(),
        (snap.page_indices().len() * P) >> 20,
        snap.unique_page_count()
    );
    let full_id = snap.id();
    let mut ram1 = ram.clone();
    let mut rng = Rng(99);
    let dirty: Vec<usize> = (0..1000)
        .map(|_| (rng.next() % pages as u64) as usize)
        .collect();
    for (i, &p) in dirty.iter().enumerate() {
        let page = &mut ram1[p * P..(p + 1) * P];
        match i % 4 {
            0 => page.fill(0),
            1 => rng.fill(page),
            2 => text_page(&mut rng, page),
            _ => struct_page(&mut rng, page),
        }
    }
    let (_, best, inc) = timed(Vec::new, |file| {
        let pages = Pages::Dirty {
            parent: full_id,
            pages: &dirty,
        };
        SnapshotWriter::new()
            .write(&mut *file, &components, &ram1, pages)
            .unwrap();
    });
    println!(
        "incremental write, 1000 dirty pages:  {}  -> {:.1} KiB",
        ms(best),
        inc.len() as f64 / 1024.0
    );

    for t in [1, threads] {
        let (_, best, _) = timed(
            || full.clone(),
            |file| {
                drop(
                    Snapshot::from_bytes_with_threads(std::mem::take(file), "full.rws", t).unwrap(),
                )
            },
        );
        println!("read + check full, {t} thread(s):      {}", ms(best));
    }
    let snap_ref = &snap;
    for t in [1, threads] {
        let apply = |ram_is_zeroed| {
            move |target: &mut Vec<u8>| {
                let options = ApplyOptions {
                    threads: t,
                    ram_is_zeroed,
                };
                snap_ref.apply_pages_with(target, options).unwrap()
            }
        };
        // Fresh, never-touched RAM, as when a new VMM process restores.
        let (_, best, target) = timed(|| vec![0u8; ram.len()], apply(true));
        assert!(target == ram, "restore differs");
        println!("apply full, fresh RAM known zero, {t} thr: {}", ms(best));
        let (_, best, target) = timed(|| vec![0u8; ram.len()], apply(false));
        assert!(target == ram, "restore differs");
        println!("apply full, fresh RAM, {t} thr:        {}", ms(best));
        // RAM full of other data, as when a running machine goes back.
        let (_, best, target) = timed(|| vec![0xA5u8; ram.len()], apply(false));
        assert!(target == ram, "restore over old data differs");
        println!("apply full over old RAM, {t} thr:      {}", ms(best));
    }

    let (_, best, _) = timed(
        || inc.clone(),
        |file| drop(Snapshot::from_bytes(std::mem::take(file), "inc.rws").unwrap()),
    );
    println!("read + check incremental:             {}", ms(best));
    let inc_snap = Snapshot::from_bytes(inc.clone(), "inc.rws").unwrap();
    let (_, best, target) = timed(
        || ram.clone(),
        |target| inc_snap.apply_pages(target).unwrap(),
    );
    assert!(target == ram1, "incremental restore differs");
    println!("apply incremental:                    {}", ms(best));

    let chain = SnapshotChain::new(vec![snap, inc_snap]).unwrap();
    let options = ApplyOptions {
        ram_is_zeroed: true,
        ..ApplyOptions::default()
    };
    let (_, best, target) = timed(
        || vec![0u8; ram.len()],
        |target| chain.apply_pages_with(target, options).unwrap(),
    );
    assert!(target == ram1, "chain restore differs");
    println!("apply full + incremental, fresh RAM:  {}", ms(best));
}
