//! Reading documents from files and directories, and the `validate` and `eval` commands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use flightdeck_core::context::ClientContext;
use flightdeck_core::diagnostic::{Diagnostic, FieldPath, Position};
use flightdeck_core::evaluate::{self, ClientFacts, EvalInput, ItemResult};
use flightdeck_core::model::{self, Document, cloudbees};
use flightdeck_jsfilter::QuickJsFilter;

/// A document read from disk, with the name the user knows it by.
struct Loaded {
    name: String,
    document: Option<Document>,
}

/// Everything read from the paths on the command line.
#[derive(Default)]
struct Inputs {
    documents: Vec<Loaded>,
    diagnostics: Vec<Diagnostic>,
    /// Files skipped during a directory walk because they are not a known format.
    skipped: Vec<String>,
}

/// `flightdeck validate PATH…`.
pub fn validate(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let inputs = load(paths)?;
    for name in &inputs.skipped {
        eprintln!("note: skipped {name}: not a recognised document");
    }
    let n_errors = inputs.diagnostics.iter().filter(|d| d.is_error()).count();
    for diagnostic in &inputs.diagnostics {
        println!("{diagnostic}");
    }
    if n_errors > 0 {
        eprintln!(
            "{n_errors} error(s) in {} document(s)",
            inputs.documents.len()
        );
        return Ok(ExitCode::from(1));
    }
    eprintln!("{} document(s) valid", inputs.documents.len());
    Ok(ExitCode::SUCCESS)
}

/// `flightdeck eval --context FILE [--json] PATH…`.
pub fn eval(context_path: &Path, json: bool, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let (context, now) = crate::read_context(context_path)?;
    let inputs = load(paths)?;
    for diagnostic in &inputs.diagnostics {
        eprintln!("{diagnostic}");
    }
    for name in &inputs.skipped {
        eprintln!("note: skipped {name}: not a recognised document");
    }

    let facts = ClientFacts {
        random_values: context.random_values.clone(),
        ..ClientFacts::default()
    };
    let js_filter = QuickJsFilter::with_default_limits();
    let input = EvalInput {
        context: &context,
        facts: &facts,
        now,
        js_filter: &js_filter,
    };

    let mut results: Vec<(String, ItemResult)> = Vec::new();
    for loaded in &inputs.documents {
        let Some(document) = &loaded.document else {
            continue;
        };
        let items = match document {
            Document::Normandy(recipes) => evaluate::normandy::evaluate(recipes, &input),
            Document::ManifestV1(manifest) => evaluate::manifest_v1::evaluate(manifest, &input),
            Document::Flights(index) => evaluate::testpilot::evaluate(index, &input),
            Document::CloudBees(config) => evaluate::cloudbees::evaluate(config, &input),
        };
        results.extend(items.into_iter().map(|item| (loaded.name.clone(), item)));
    }

    if json {
        for (file, item) in &results {
            let mut line = serde_json::to_value(item).context("cannot serialise a result")?;
            if let Some(object) = line.as_object_mut() {
                object.insert("file".to_owned(), serde_json::Value::String(file.clone()));
            }
            println!("{line}");
        }
    } else {
        print_table(&results);
    }
    let has_errors = inputs.diagnostics.iter().any(Diagnostic::is_error);
    Ok(if has_errors {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints results as a table whose columns are as wide as their widest cell, so that a long
/// id or reason never shifts the columns after it. VALUE comes last and is not padded.
fn print_table(results: &[(String, ItemResult)]) {
    const HEADERS: [&str; 6] = ["MATCHED", "KIND", "ID", "BRANCH", "REASON", "VALUE"];
    let rows: Vec<[String; 6]> = results
        .iter()
        .map(|(_, item)| {
            [
                if item.matched { "yes" } else { "no" }.to_owned(),
                item.kind.clone(),
                item.id.clone(),
                item.branch.clone().unwrap_or_else(|| "-".to_owned()),
                item.reason.clone().unwrap_or_else(|| "-".to_owned()),
                item.value
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), ToString::to_string),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(|header| header.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut out = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        out
    };
    println!("{}", line(HEADERS));
    for row in &rows {
        println!("{}", line(row.each_ref().map(String::as_str)));
    }
}

/// Reads every path: explicit files must be documents; directories are walked.
fn load(paths: &[PathBuf]) -> anyhow::Result<Inputs> {
    let mut inputs = Inputs::default();
    for path in paths {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if metadata.is_dir() {
            load_dir(path, &mut inputs)?;
        } else {
            load_file(path, true, &mut inputs)?;
        }
    }
    Ok(inputs)
}

fn is_cloudbees_tree(dir: &Path) -> bool {
    dir.join("experiments").is_dir() || dir.join("target_groups").is_dir()
}

fn load_dir(dir: &Path, inputs: &mut Inputs) -> anyhow::Result<()> {
    if is_cloudbees_tree(dir) {
        return load_cloudbees_tree(dir, inputs);
    }
    for path in sorted_entries(dir)? {
        if path.is_dir() {
            load_dir(&path, inputs)?;
        } else {
            load_file(&path, false, inputs)?;
        }
    }
    Ok(())
}

fn sorted_entries(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name();
        // Hidden files and directories (`.git`, editor swap files) are never documents.
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        entries.push(entry.path());
    }
    entries.sort();
    Ok(entries)
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml")
    )
}

fn is_json(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("json"))
}

/// Reads one file. `explicit` files that are not a known format are errors; files met in a
/// directory walk are skipped with a note.
fn load_file(path: &Path, explicit: bool, inputs: &mut Inputs) -> anyhow::Result<()> {
    let name = path.display().to_string();
    if !(is_json(path) || is_yaml(path)) {
        if explicit {
            anyhow::bail!("{name}: not a .json, .yml or .yaml file");
        }
        return Ok(());
    }
    let Some(text) = read_text(path, &name, inputs)? else {
        inputs.documents.push(Loaded {
            name,
            document: None,
        });
        return Ok(());
    };
    let parsed = if is_yaml(path) {
        model::parse_yaml_document(&name, &text)
    } else {
        model::parse_json_document(&name, &text)
    };
    match parsed {
        Some(parsed) => {
            inputs.diagnostics.extend(parsed.diagnostics);
            inputs.documents.push(Loaded {
                name,
                document: parsed.value,
            });
        }
        // A client context document beside the manifests (as in `examples/`) is an input
        // of `eval`, not a document to validate.
        None if !explicit && ClientContext::from_json(&text).is_ok() => {}
        None if explicit => {
            anyhow::bail!(
                "{name}: not a recognised document (Normandy recipes, Manifest v1, Test Pilot flights or CloudBees YAML)"
            )
        }
        None => inputs.skipped.push(name),
    }
    Ok(())
}

/// Reads a document's text. A file that exists but is not UTF-8 is an invalid document (a
/// diagnostic at its first bad byte, `None` here), not an unreadable path.
fn read_text(path: &Path, name: &str, inputs: &mut Inputs) -> anyhow::Result<Option<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {name}"))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Some(text)),
        Err(err) => {
            let valid_up_to = err.utf8_error().valid_up_to();
            let valid = err
                .as_bytes()
                .get(..valid_up_to)
                .and_then(|prefix| std::str::from_utf8(prefix).ok())
                .unwrap_or_default();
            inputs.diagnostics.push(Diagnostic::error(
                name,
                Position::of_offset(valid, valid.len()),
                FieldPath::root(),
                format!("not UTF-8 text (invalid byte at offset {valid_up_to})"),
            ));
            Ok(None)
        }
    }
}

/// Reads a CloudBees configuration tree: `experiments/*.yml`, `experiments/archived/*.yml`
/// and `target_groups/*.yml`.
fn load_cloudbees_tree(dir: &Path, inputs: &mut Inputs) -> anyhow::Result<()> {
    let mut config = cloudbees::Configuration::default();
    let experiments_dir = dir.join("experiments");
    let archived_dir = experiments_dir.join("archived");
    let groups_dir = dir.join("target_groups");
    for (folder, archived) in [(&experiments_dir, false), (&archived_dir, true)] {
        if !folder.is_dir() {
            continue;
        }
        for path in sorted_entries(folder)? {
            if !is_yaml(&path) {
                continue;
            }
            let name = path.display().to_string();
            // The file's place among the files of `experiments/`, for the order of results.
            let place = config.experiments.len() + config.rejected.len();
            let first_diagnostic = inputs.diagnostics.len();
            let Some(text) = read_text(&path, &name, inputs)? else {
                if !archived {
                    // Not text: no flag name to read, only the reason.
                    config.rejected.extend(cloudbees::rejected_experiment(
                        &name,
                        "",
                        inputs
                            .diagnostics
                            .get(first_diagnostic..)
                            .unwrap_or_default(),
                        place,
                    ));
                }
                continue;
            };
            let parsed = cloudbees::parse_experiment(&name, &text);
            match parsed.value {
                Some(experiment) if archived => config.archived_experiments.push(experiment),
                Some(experiment) => config.experiments.push(experiment),
                // A broken experiment is listed by `eval` as invalid, not dropped.
                None if !archived => config.rejected.extend(cloudbees::rejected_experiment(
                    &name,
                    &text,
                    &parsed.diagnostics,
                    place,
                )),
                None => {}
            }
            inputs.diagnostics.extend(parsed.diagnostics);
        }
    }
    if groups_dir.is_dir() {
        for path in sorted_entries(&groups_dir)? {
            if !is_yaml(&path) {
                continue;
            }
            let name = path.display().to_string();
            let Some(text) = read_text(&path, &name, inputs)? else {
                continue;
            };
            let parsed = cloudbees::parse_target_group(&name, &text);
            inputs.diagnostics.extend(parsed.diagnostics);
            if let Some(group) = parsed.value {
                config.target_groups.push(group);
            }
        }
    }
    inputs.diagnostics.extend(cloudbees::validate(&config));
    inputs.documents.push(Loaded {
        name: dir.display().to_string(),
        document: Some(Document::CloudBees(config)),
    });
    Ok(())
}
