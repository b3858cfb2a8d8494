//! The pack's rules (rules/*.yml, one rule a file, sorted by file name), checked and
//! indexed now with the code the component runs (`plumbline-sigma`): a rule that does not
//! parse fails the build naming its file, and the component carries each rule with what
//! it needs of an event (`plumbline_sigma::index::Entry`), so a call parses only the rules
//! an event can match.

use plumbline_sigma::index::entry_source;
use plumbline_sigma::rules::parse_rule;
use plumbline_sigma::Parsed;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("rules/ beside Cargo.toml")
        .map(|e| e.expect("readable rules/").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    let mut table = String::from("&[\n");
    for p in &files {
        let doc = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        match parse_rule(&doc, &p.display().to_string()) {
            Ok(Parsed::Detection(r)) => {
                table.push_str(&entry_source(&r, &doc));
                table.push_str(",\n");
            }
            Ok(Parsed::Correlation(_)) => {
                panic!(
                    "{}: a correlation rule; this pack is single events",
                    p.display()
                )
            }
            Err(e) => panic!("{e}"),
        }
    }
    table.push_str("]\n");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("rules.rs"), table).expect("OUT_DIR is writable");
}
