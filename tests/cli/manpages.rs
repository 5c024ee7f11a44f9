//! The manual pages in `man/` are generated from the command line, as `--help` is, and must
//! be in step with it: this test renders them again and compares. `BLESS=1` rewrites `man/`
//! (review the diff as code).

use std::collections::BTreeMap;
use std::path::Path;

fn checked_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.expect("dir entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "1"))
                .map(|p| {
                    let name = p.file_name().expect("name").to_string_lossy().into_owned();
                    (name, std::fs::read(&p).expect("reading a page"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn issue_24_manual_pages_are_in_step_with_the_command_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let generated: BTreeMap<String, Vec<u8>> = kubepki::cli::manual_pages()
        .expect("rendering the pages")
        .into_iter()
        .collect();
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(&dir).expect("man/");
        for stale in checked_in(&dir)
            .keys()
            .filter(|n| !generated.contains_key(*n))
        {
            std::fs::remove_file(dir.join(stale)).expect("removing a stale page");
        }
        for (name, roff) in &generated {
            std::fs::write(dir.join(name), roff).expect("writing a page");
        }
    }
    let found = checked_in(&dir);
    let names = |pages: &BTreeMap<String, Vec<u8>>| pages.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&found),
        names(&generated),
        "man/ is not in step with the command line: run BLESS=1 cargo test --test cli manpages"
    );
    for (name, roff) in &generated {
        assert!(
            found[name] == *roff,
            "man/{name} is not in step with the command line: run BLESS=1 cargo test --test cli manpages"
        );
    }
    for page in [
        "kubepki.1",
        "kubepki-certs-renew.1",
        "kubepki-init-phase-certs.1",
    ] {
        assert!(
            generated.contains_key(page),
            "{page}: {:?}",
            names(&generated)
        );
    }
    let renew = String::from_utf8_lossy(&generated["kubepki-certs-renew.1"]);
    for flag in [
        "detailed\\-exit\\-code",
        "metrics\\-file",
        "expiring\\-within",
    ] {
        assert!(renew.contains(flag), "{flag} in\n{renew}");
    }
}
