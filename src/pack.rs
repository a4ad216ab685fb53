//! `rewind pack FILE [-o OUT]`: a copy of a recording or snapshot that
//! carries the files its machine is built from (see packed.rs), so that it
//! replays or restores on a host that has none of them, as `rr pack` does
//! for rr's traces. The files are found as a replay or restore would find
//! them, and checked against their hashes.

use crate::CliError;
use rewind_session::images::Origin;
use rewind_session::packed::{ToPack, Unpacked};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where `pack` writes when not told: `run.rwd` -> `run.packed.rwd`.
fn default_output(input: &Path) -> PathBuf {
    let stem = input.file_stem().unwrap_or_default().to_string_lossy();
    let name = match input.extension() {
        Some(ext) => format!("{stem}.packed.{}", ext.to_string_lossy()),
        None => format!("{stem}.packed"),
    };
    input.with_file_name(name)
}

pub fn pack(input: &Path, output: Option<&Path>) -> Result<ExitCode, CliError> {
    let output = output.map_or_else(|| default_output(input), Path::to_path_buf);
    if output == input {
        return Err(CliError::Message(format!(
            "rewind pack writes a new file: give -o a path other than {}",
            input.display()
        )));
    }
    let mut magic = [0u8; 8];
    let readable = File::open(input).and_then(|mut f| f.read_exact(&mut magic));
    let (what, packed) = if readable.is_ok() && &magic == b"RWNDSNAP" {
        ("snapshot", pack_snapshot(input, &output)?)
    } else {
        ("recording", pack_recording(input, &output)?)
    };
    eprintln!(
        "rewind: packed {} files ({} bytes stored) into the {what} {}",
        packed.images.len(),
        packed.stored_bytes(),
        output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes `output` through a temporary file renamed into place, so that it
/// never exists half-written.
fn write_atomically(
    output: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), CliError> {
    let tmp = output.with_extension("tmp-pack");
    let result = File::create(&tmp).and_then(|file| {
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, output)
    });
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::Message(format!("cannot write {}: {e}", output.display()))
    })
}

fn pack_recording(input: &Path, output: &Path) -> Result<ToPack, CliError> {
    // The whole file is checked first: packing a damaged recording would
    // only hide the damage.
    rewind_session::recording::scan(input, |_| {})?;
    let (reader, mut header) = rewind_session::recording::open(input)?;
    if !header.packed.is_empty() {
        return Err(CliError::Message(format!(
            "the recording {} carries its files already",
            input.display()
        )));
    }
    let frames_at = reader.offset();
    drop(reader);
    let to_pack = ToPack::gather(&header.config, Origin::Recording, &Unpacked::default())?;
    header.packed = to_pack.list();
    write_atomically(output, |out| {
        let mut stored: Vec<&File> = to_pack.images.iter().map(|(_, file)| file).collect();
        let mut images: Vec<&mut dyn Read> =
            stored.iter_mut().map(|f| f as &mut dyn Read).collect();
        let writer = rewind_replay::RecordingWriter::create(
            &mut *out,
            rewind_machine::MODEL_VERSION,
            &header,
            &mut images,
        )?;
        let out = writer.finish()?;
        // The frames as they are: packing changes nothing that replays.
        let mut source = File::open(input)?;
        source.seek(SeekFrom::Start(frames_at))?;
        std::io::copy(&mut source, out)?;
        out.flush()
    })?;
    Ok(to_pack)
}

fn pack_snapshot(input: &Path, output: &Path) -> Result<ToPack, CliError> {
    let chain = rewind_session::snapshot::open_chain(input)?;
    if chain
        .head()
        .component(rewind_session::packed::PACKED_LIST)
        .is_some()
    {
        return Err(CliError::Message(format!(
            "the snapshot {} carries its files already",
            input.display()
        )));
    }
    // The restored disks' overlays are only read back into the packed copy.
    let overlay_dir = std::env::temp_dir();
    let mut restored =
        rewind_session::snapshot::restore(&chain, &Unpacked::default(), &overlay_dir)?;
    drop(chain);
    let to_pack = ToPack::gather(&restored.config, Origin::Snapshot, &Unpacked::default())?;
    let mut snapshots = rewind_session::snapshot::Snapshotter::new(
        restored.config.clone(),
        Default::default(),
        &restored.machine,
    );
    if let Some(position) = &restored.recording {
        snapshots.within_recording(position.header_blake3);
    }
    snapshots
        .carry(&to_pack)
        .map_err(|e| CliError::Message(format!("cannot pack the snapshot's files: {e}")))?;
    // Written through a temporary file renamed into place, as every
    // snapshot is.
    snapshots
        .full(&mut restored.machine, output)
        .map_err(CliError::Message)?;
    Ok(to_pack)
}
