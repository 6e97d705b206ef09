//! The layering rule, checked: a module uses only modules of layers below its own, so the graph
//! reads top-down with no cycle. Code under `#[cfg(test)]` may reach anywhere (test helpers,
//! fixtures); the binary (`main.rs`, `cli/`) sits above everything and sees only the public
//! library.

use std::path::Path;

/// Each top-level module of the library and its layer (0 is the bottom).
const LAYERS: &[(&str, u8)] = &[
    ("clock", 0),
    ("text", 0),
    ("model", 1),
    ("search", 1),
    ("fetch", 2),
    ("db", 2),
    ("mapping", 3),
    ("config", 4),
    ("sync", 5),
    ("publish", 5),
    ("notify", 6),
    ("synthetic", 6),
    ("serve", 7),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// Every `crate::NAME` a piece of code mentions.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let ident = |text: &str| -> String {
            text.trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        match rest.strip_prefix('{') {
            // `crate::{a::X, b}`: every top-level name of the group.
            Some(group) => {
                let mut depth = 0;
                let mut start = 0;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            out.push(ident(&group[start..i]));
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            out.push(ident(&group[start..i]));
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
            }
            None => out.push(ident(rest)),
        }
    }
    out.retain(|name| !name.is_empty());
    out
}

/// Every upward (or sideways) use in the library: (file, its module, the module it uses).
fn violations(src: &Path) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let mut files = vec![src.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
            continue;
        }
        let relative = path.strip_prefix(src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if path.extension().is_none_or(|e| e != "rs")
            || ["main", "cli", "lib", "layering"].contains(&top.as_str())
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Code under test may use anything.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let own = layer(&top).unwrap_or_else(|| panic!("{top} has no layer in LAYERS"));
        // In `db/x.rs`, `super::super` climbs out of the module's own tree to the crate root.
        if code.contains("super::super") && relative.components().nth(2).is_none() {
            found.push((
                relative.display().to_string(),
                top.clone(),
                "super::super".into(),
            ));
        }
        for used in crate_paths(code) {
            let Some(theirs) = layer(&used) else {
                found.push((relative.display().to_string(), top.clone(), used));
                continue;
            };
            if used != top && theirs >= own {
                found.push((relative.display().to_string(), top.clone(), used));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn no_module_uses_a_layer_above_or_beside_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    assert_eq!(violations(&src), Vec::<(String, String, String)>::new());
}

#[test]
fn the_check_sees_an_upward_use() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("db")).unwrap();
    std::fs::write(
        dir.path().join("db/mod.rs"),
        "use crate::model::Stored;\nuse crate::sync::diff::Status;\n#[cfg(test)]\nuse crate::sync::x;\n",
    )
    .unwrap();
    assert_eq!(
        violations(dir.path()),
        vec![(
            "db/mod.rs".to_string(),
            "db".to_string(),
            "sync".to_string()
        )]
    );
}
