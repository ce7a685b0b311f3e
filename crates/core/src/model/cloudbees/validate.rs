//! Checks that need more than one file: names that must be unique, references that must
//! resolve, dependency cycles.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Condition, Configuration, Experiment};
use crate::diagnostic::{Diagnostic, FieldPath};

/// Cross-file checks of a configuration.
///
/// | problem | severity |
/// |---|---|
/// | two active experiments control the same flag | error (on the later file) |
/// | two target groups have the same name | error (on the later file) |
/// | a group condition names an unknown target group | error (it would never match) |
/// | a dependency cycle between active experiments | error |
/// | a dependency on a flag with no active experiment | warning (the SDK reads `"false"`, or the value registered in code) |
/// | a dependency on a flag that only an archived experiment controls | warning |
/// | a dependency value not among the other flag's `availableValues` | warning |
/// | an experiment under `experiments/` with `archived: true`, or one under `experiments/archived/` without it | warning |
/// | an archived experiment controls the same flag as an active one | warning |
pub fn validate(config: &Configuration) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let flag_path = FieldPath::root().key("flag");

    let mut active: HashMap<&str, &Experiment> = HashMap::new();
    for experiment in &config.experiments {
        if let Some(first) = active.get(experiment.flag.as_str()) {
            out.push(experiment.source.error(
                flag_path.clone(),
                format!(
                    "flag `{}` is already controlled by {}",
                    experiment.flag,
                    first.source.file()
                ),
            ));
        } else {
            active.insert(&experiment.flag, experiment);
        }
        if experiment.is_archived() {
            out.push(
                experiment.source.warning(
                    FieldPath::root().key("archived"),
                    "experiment is marked archived but is not under experiments/archived/; it is \
                 not evaluated"
                        .to_owned(),
                ),
            );
        }
    }
    let mut archived: HashMap<&str, &Experiment> = HashMap::new();
    for experiment in &config.archived_experiments {
        archived.entry(&experiment.flag).or_insert(experiment);
        if let Some(live) = active.get(experiment.flag.as_str()) {
            out.push(experiment.source.warning(
                flag_path.clone(),
                format!(
                    "archived experiment controls flag `{}`, which {} also controls",
                    experiment.flag,
                    live.source.file()
                ),
            ));
        }
        if experiment.archived == Some(false) {
            out.push(
                experiment.source.warning(
                    FieldPath::root().key("archived"),
                    "experiment under experiments/archived/ says `archived: false`; it is treated \
                 as archived"
                        .to_owned(),
                ),
            );
        }
    }

    let mut groups: HashMap<&str, &str> = HashMap::new();
    for group in &config.target_groups {
        if let Some(first) = groups.get(group.name.as_str()) {
            out.push(group.source.error(
                FieldPath::root().key("name"),
                format!(
                    "target group `{}` is already defined in {first}",
                    group.name
                ),
            ));
        } else {
            groups.insert(&group.name, group.source.file());
        }
    }

    for experiment in config.experiments.iter().filter(|e| !e.is_archived()) {
        for (path, condition) in conditions_of(experiment) {
            if let Some(group) = &condition.group {
                for (idx, name) in group.name.as_slice().iter().enumerate() {
                    if !groups.contains_key(name.as_str()) {
                        let name_path = path.key("group").key("name");
                        let name_path = match group.name {
                            super::OneOrMany::One(_) => name_path,
                            super::OneOrMany::Many(_) => name_path.index(idx),
                        };
                        out.push(
                            experiment
                                .source
                                .error(name_path, format!("unknown target group `{name}`")),
                        );
                    }
                }
            }
            if let Some(dependency) = &condition.dependency {
                let dep_path = path.key("dependency").key("flag");
                match active.get(dependency.flag.as_str()) {
                    Some(target) if target.is_archived() || target.flag == experiment.flag => {}
                    Some(target) => {
                        if let Some(values) = &target.available_values
                            && !values.contains(&dependency.value)
                        {
                            out.push(experiment.source.warning(
                                path.key("dependency").key("value"),
                                format!(
                                    "`{}` is not among the available values of flag `{}`",
                                    dependency.value.to_flag_string(),
                                    dependency.flag
                                ),
                            ));
                        }
                    }
                    None if archived.contains_key(dependency.flag.as_str()) => {
                        out.push(experiment.source.warning(
                            dep_path,
                            format!(
                                "flag `{}` is only controlled by an archived experiment",
                                dependency.flag
                            ),
                        ));
                    }
                    None => out.push(experiment.source.warning(
                        dep_path,
                        format!(
                            "no experiment controls flag `{}`; the dependency sees \"false\"",
                            dependency.flag
                        ),
                    )),
                }
            }
        }
    }

    out.extend(dependency_cycles(config, &active));
    out
}

/// Every condition of an experiment (root and platforms) with its path.
pub(crate) fn conditions_of(experiment: &Experiment) -> Vec<(FieldPath, &Condition)> {
    let root = FieldPath::root();
    let mut out = Vec::new();
    for (idx, c) in experiment.conditions.iter().flatten().enumerate() {
        out.push((root.key("conditions").index(idx), c));
    }
    for (pidx, platform) in experiment.platforms.iter().flatten().enumerate() {
        for (idx, c) in platform.conditions.iter().flatten().enumerate() {
            out.push((
                root.key("platforms")
                    .index(pidx)
                    .key("conditions")
                    .index(idx),
                c,
            ));
        }
    }
    out
}

/// Reports each cycle of the flag dependency graph once, on the experiment whose flag sorts
/// first in the cycle.
fn dependency_cycles(
    config: &Configuration,
    active: &HashMap<&str, &Experiment>,
) -> Vec<Diagnostic> {
    let mut edges: BTreeMap<&str, Vec<(&str, FieldPath)>> = BTreeMap::new();
    for experiment in config.experiments.iter().filter(|e| !e.is_archived()) {
        for (path, condition) in conditions_of(experiment) {
            if let Some(dependency) = &condition.dependency
                && active.contains_key(dependency.flag.as_str())
            {
                edges
                    .entry(experiment.flag.as_str())
                    .or_default()
                    .push((dependency.flag.as_str(), path.key("dependency").key("flag")));
            }
        }
    }
    let mut out = Vec::new();
    let mut reported: HashSet<Vec<&str>> = HashSet::new();
    for &start in edges.keys() {
        // Iterative depth-first search for a path back to `start`.
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        let mut on_path: Vec<&str> = vec![start];
        let mut visited: HashSet<&str> = HashSet::new();
        while let Some((node, next)) = stack.pop() {
            let targets = edges.get(node).map_or(&[][..], Vec::as_slice);
            let Some((target, _)) = targets.get(next) else {
                on_path.pop();
                continue;
            };
            stack.push((node, next + 1));
            if *target == start {
                let mut cycle = on_path.clone();
                cycle.sort_unstable();
                cycle.dedup();
                if reported.insert(cycle) {
                    let experiment = active.get(start);
                    let first_hop = on_path.get(1).copied().unwrap_or(start);
                    let first_edge = edges
                        .get(start)
                        .and_then(|e| e.iter().find(|(t, _)| *t == first_hop))
                        .map(|(_, p)| p.clone())
                        .unwrap_or_default();
                    if let Some(experiment) = experiment {
                        let mut names: Vec<&str> = on_path.clone();
                        names.push(start);
                        out.push(experiment.source.error(
                            first_edge,
                            format!("dependency cycle: {}", names.join(" -> ")),
                        ));
                    }
                }
            } else if visited.insert(target) {
                stack.push((target, 0));
                on_path.push(target);
            }
        }
    }
    out
}
