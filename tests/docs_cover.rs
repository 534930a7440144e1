//! The operator's pages name every module the collection ships and every config section the
//! reader takes: a module or section added without its row in the front-door tables, or without
//! its place in docs/operations.md, fails here.

use std::fs;
use std::path::Path;

fn read(rel: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The modules the collection ships: one sidecar documentation file each.
fn shipped_modules() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible/plugins/modules");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".yml").filter(|n| n.starts_with("lltune_")).map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// The first cells of a markdown table's rows, in the part of `text` after `heading`.
fn table_rows(text: &str, heading: &str) -> Vec<String> {
    let after = text.split_once(heading).unwrap_or_else(|| panic!("no heading {heading:?}")).1;
    after
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1).map(|c| c.trim().trim_matches('`').to_owned()))
        .collect()
}

#[test]
fn every_shipped_module_has_a_row_in_both_readmes() {
    let modules = shipped_modules();
    assert!(modules.len() >= 18, "ansible/plugins/modules lists {} modules", modules.len());
    for (page, heading) in [("README.md", "## The modules"), ("ansible/README.md", "## Modules")] {
        let rows = table_rows(&read(page), heading);
        let missing: Vec<&String> = modules.iter().filter(|m| !rows.contains(m)).collect();
        assert!(missing.is_empty(), "{page}: the module table under {heading:?} lacks {missing:?}");
        let unknown: Vec<&String> =
            rows.iter().filter(|r| *r != "module" && !r.starts_with("---") && !modules.contains(r)).collect();
        assert!(unknown.is_empty(), "{page}: the module table names modules the collection does not ship: {unknown:?}");
    }
}

#[test]
fn operations_guide_covers_every_module_and_config_section() {
    let ops = read("docs/operations.md");
    let (modules_part, rest) =
        ops.split_once("## The config, section by section").expect("operations.md: no config part");
    let config_part = rest.split("\n## ").next().unwrap();
    for m in shipped_modules() {
        let heading = modules_part.lines().any(|l| l.starts_with("###") && l.contains(&format!("`{m}`")));
        let row = modules_part.lines().any(|l| l.starts_with(&format!("| `{m}`")));
        assert!(
            heading || row,
            "docs/operations.md: {m} has neither a heading nor a row of its own before the config part"
        );
    }
    for section in lltune::config::SECTIONS {
        let named = config_part.lines().any(|l| l.starts_with("###") && l.contains(&format!("`{section}`")));
        assert!(
            named,
            "docs/operations.md: config section {section} has no heading under \"The config, section by section\""
        );
    }
    let config_md = read("docs/config.md");
    for section in lltune::config::SECTIONS {
        assert!(
            config_md.contains(&format!("`{section}`")),
            "docs/config.md does not name the config section {section}"
        );
    }
}
