//! Writes `docs/concepts/img/<algorithm>.svg`: what each algorithm admits of one bursty
//! arrival pattern, drawn from running the memory store with the clock moved by hand.
//!
//! Run with `cargo run -p tollgate-core --example algorithm_pictures`; the test
//! `algorithm_pictures` fails while the committed pictures differ from what this writes.

mod draw;

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join(draw::FOLDER);
    std::fs::create_dir_all(&folder)?;
    for (file, svg) in draw::pictures()? {
        let path = folder.join(&file);
        std::fs::write(&path, svg)?;
        println!("wrote docs/concepts/img/{file}");
    }
    Ok(())
}
