//! `caravan job plan`: the diff against the registered job and a scheduler dry run.

use super::format::{alloc_metrics, failed_group};
use super::jobfile::{self, FileArgs};
use super::Global;
use anyhow::Context;
use clap::Args;
use structs::{FieldDiff, JobDiff, JobPlanRequest, JobPlanResponse, ObjectDiff, TaskGroupDiff};

/// Flags of `job plan`.
#[derive(Debug, Clone, Args)]
pub(crate) struct PlanArgs {
    /// Show the full diff, unchanged fields included.
    #[arg(long)]
    verbose: bool,
    #[command(flatten)]
    file: FileArgs,
}

fn marker(diff_type: &str) -> &'static str {
    match diff_type {
        "Added" => "+",
        "Deleted" => "-",
        "Edited" => "+/-",
        _ => "",
    }
}

/// The width the markers of one level take (`+/- ` = 4), so that text lines up.
fn level_width<'a>(types: impl IntoIterator<Item = &'a str>) -> usize {
    types
        .into_iter()
        .map(|t| match marker(t) {
            "" => 0,
            m => m.len() + 1,
        })
        .max()
        .unwrap_or(0)
}

/// Indentation plus the marker right-aligned in the level's marker column.
fn prefix(base: usize, width: usize, diff_type: &str) -> String {
    let m = marker(diff_type);
    let m = if m.is_empty() {
        String::new()
    } else {
        format!("{m} ")
    };
    format!(
        "{}{}{m}",
        " ".repeat(base),
        " ".repeat(width.saturating_sub(m.len()))
    )
}

fn annotations(a: &[String]) -> String {
    if a.is_empty() {
        String::new()
    } else {
        format!(" ({})", a.join(", "))
    }
}

/// Renders one level's fields (values aligned) and objects.
fn fields_and_objects(
    out: &mut String,
    base: usize,
    width: usize,
    fields: &[FieldDiff],
    objects: &[ObjectDiff],
) {
    let name_width = fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for f in fields {
        let value = match f.diff_type.as_str() {
            "Added" => format!("{:?}", f.new),
            "Deleted" => format!("{:?}", f.old),
            "Edited" => format!("{:?} => {:?}", f.old, f.new),
            _ => format!("{:?}", f.new),
        };
        let pad = " ".repeat(name_width - f.name.len());
        out.push_str(&format!(
            "{}{}: {pad}{value}{}\n",
            prefix(base, width, &f.diff_type),
            f.name,
            annotations(&f.annotations)
        ));
    }
    for o in objects {
        out.push_str(&format!(
            "{}{} {{\n",
            prefix(base, width, &o.diff_type),
            o.name
        ));
        let inner = level_width(
            o.fields
                .iter()
                .map(|f| f.diff_type.as_str())
                .chain(o.objects.iter().map(|o| o.diff_type.as_str())),
        );
        fields_and_objects(out, base + 2, inner, &o.fields, &o.objects);
        out.push_str(&format!("{}}}\n", " ".repeat(base + width)));
    }
}

/// The `(2 create, 1 in-place update)` counts of a group.
fn update_counts(g: &TaskGroupDiff) -> String {
    let order = [
        "create",
        "create/destroy update",
        "destroy",
        "migrate",
        "in-place update",
        "canary",
        "ignore",
    ];
    let mut parts: Vec<String> = order
        .iter()
        .filter_map(|k| {
            g.updates
                .get(*k)
                .filter(|n| **n > 0)
                .map(|n| format!("{n} {k}"))
        })
        .collect();
    parts.extend(
        g.updates
            .iter()
            .filter(|(k, n)| !order.contains(&k.as_str()) && **n > 0)
            .map(|(k, n)| format!("{n} {k}")),
    );
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn task_group(out: &mut String, g: &TaskGroupDiff, width: usize, verbose: bool) {
    out.push_str(&format!(
        "{}Task Group: {:?}{}\n",
        prefix(0, width, &g.diff_type),
        g.name,
        update_counts(g)
    ));
    let show_fields = verbose || g.diff_type == "Edited";
    let (fields, objects) = if show_fields {
        (&g.fields[..], &g.objects[..])
    } else {
        (&[][..], &[][..])
    };
    let inner = level_width(
        fields
            .iter()
            .map(|f| f.diff_type.as_str())
            .chain(objects.iter().map(|o| o.diff_type.as_str()))
            .chain(g.tasks.iter().map(|t| t.diff_type.as_str())),
    );
    fields_and_objects(out, 2, inner, fields, objects);
    for t in &g.tasks {
        out.push_str(&format!(
            "{}Task: {:?}{}\n",
            prefix(2, inner, &t.diff_type),
            t.name,
            annotations(&t.annotations)
        ));
        if verbose || t.diff_type == "Edited" {
            let tw = level_width(
                t.fields
                    .iter()
                    .map(|f| f.diff_type.as_str())
                    .chain(t.objects.iter().map(|o| o.diff_type.as_str())),
            );
            fields_and_objects(out, 4, tw, &t.fields, &t.objects);
        }
    }
}

/// Renders a job diff in Nomad's format: markers `+`, `-`, `+/-` right-aligned per level,
/// unchanged lines indented to match, field values aligned.
pub(crate) fn render_diff(d: &JobDiff, verbose: bool) -> String {
    let show_fields = verbose || d.diff_type == "Edited";
    let (fields, objects) = if show_fields {
        (&d.fields[..], &d.objects[..])
    } else {
        (&[][..], &[][..])
    };
    let width = level_width(
        std::iter::once(d.diff_type.as_str())
            .chain(fields.iter().map(|f| f.diff_type.as_str()))
            .chain(objects.iter().map(|o| o.diff_type.as_str()))
            .chain(d.task_groups.iter().map(|g| g.diff_type.as_str())),
    );
    let mut out = format!("{}Job: {:?}\n", prefix(0, width, &d.diff_type), d.id);
    fields_and_objects(&mut out, 0, width, fields, objects);
    for g in &d.task_groups {
        task_group(&mut out, g, width, verbose);
    }
    out
}

/// True when the plan creates or destroys allocations (exit code 1).
fn changes_allocs(p: &JobPlanResponse) -> bool {
    p.annotations
        .desired_tg_updates
        .values()
        .any(|u| u.place > 0 || u.stop > 0 || u.destructive_update > 0)
}

/// Runs the plan; exit 0 no allocation changes, 1 changes, 255 error (by the caller).
pub(crate) fn run(g: &Global, a: &PlanArgs) -> anyhow::Result<i32> {
    let parsed = jobfile::read(&a.file)?;
    jobfile::check(&parsed.job)?;
    let client = g.client_in_region(Some(&parsed.job.region));
    let plan = client
        .plan(&JobPlanRequest {
            job: Some(parsed.job.clone()),
            diff: true,
            policy_override: false,
        })
        .context("Error during plan")?;
    print!("{}", render_plan(&plan, &a.file.file, a.verbose));
    Ok(if changes_allocs(&plan) { 1 } else { 0 })
}

/// Everything `job plan` prints after a successful plan.
fn render_plan(plan: &JobPlanResponse, file: &str, verbose: bool) -> String {
    let mut out = String::new();
    if let Some(diff) = &plan.diff {
        out.push_str(&render_diff(diff, verbose));
        out.push('\n');
    }
    out.push_str("Scheduler dry-run:\n");
    if plan.failed_tg_allocs.is_empty() {
        out.push_str("- All tasks successfully allocated.\n");
    } else {
        out.push_str("- WARNING: Failed to place all allocations.\n");
        for (group, m) in &plan.failed_tg_allocs {
            out.push_str(&format!("  {}\n", failed_group(group, m)));
            out.push_str(&alloc_metrics(m, "    "));
        }
    }
    if !plan.warnings.trim().is_empty() {
        out.push_str(&format!("\nJob Warnings:\n{}\n", plan.warnings.trim_end()));
    }
    let index = plan.job_modify_index;
    out.push_str(&format!(
        "\nJob Modify Index: {index}\n\
         To submit the job with version verification run:\n\n\
         caravan job run -check-index {index} {file}\n\n\
         When running the job with the check-index flag, the job will only be run if the\n\
         job modify index given matches the server-side version. If the index has\n\
         changed, another user has modified the job and the plan's results are\n\
         potentially invalid.\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use structs::{AllocMetric, TaskDiff};

    fn field(t: &str, name: &str, old: &str, new: &str) -> FieldDiff {
        FieldDiff {
            diff_type: t.into(),
            name: name.into(),
            old: old.into(),
            new: new.into(),
            annotations: vec![],
        }
    }

    fn task(t: &str, name: &str) -> TaskDiff {
        TaskDiff {
            diff_type: t.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn renders_count_change() {
        let mut count = field("Edited", "Count", "1", "3");
        count.annotations = vec!["forces create".into()];
        let d = JobDiff {
            diff_type: "Edited".into(),
            id: "example".into(),
            task_groups: vec![TaskGroupDiff {
                diff_type: "Edited".into(),
                name: "cache".into(),
                fields: vec![count],
                tasks: vec![task("None", "redis")],
                updates: [
                    ("create".to_string(), 2),
                    ("in-place update".to_string(), 1),
                ]
                .into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            render_diff(&d, false),
            "+/- Job: \"example\"\n\
             +/- Task Group: \"cache\" (2 create, 1 in-place update)\n  \
             +/- Count: \"1\" => \"3\" (forces create)\n      \
             Task: \"redis\"\n"
        );
    }

    #[test]
    fn renders_new_job() {
        let mut t = task("Added", "redis");
        t.annotations = vec!["forces create".into()];
        t.fields = vec![field("Added", "Driver", "", "docker")];
        let d = JobDiff {
            diff_type: "Added".into(),
            id: "example".into(),
            task_groups: vec![TaskGroupDiff {
                diff_type: "Added".into(),
                name: "cache".into(),
                tasks: vec![t],
                updates: [("create".to_string(), 1)].into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            render_diff(&d, false),
            "+ Job: \"example\"\n+ Task Group: \"cache\" (1 create)\n  + Task: \"redis\" (forces create)\n"
        );
        assert!(render_diff(&d, true).ends_with("    + Driver: \"docker\"\n"));
    }

    #[test]
    fn renders_nested_objects_with_aligned_values() {
        let config = ObjectDiff {
            diff_type: "Edited".into(),
            name: "Config".into(),
            fields: vec![
                field("Edited", "image", "redis:3.2", "redis:7"),
                field("None", "port_map[0][db]", "6379", "6379"),
            ],
            objects: vec![],
        };
        let mut t = task("Edited", "redis");
        t.annotations = vec!["forces create/destroy update".into()];
        t.objects = vec![config];
        let d = JobDiff {
            diff_type: "Edited".into(),
            id: "example".into(),
            task_groups: vec![TaskGroupDiff {
                diff_type: "Edited".into(),
                name: "cache".into(),
                tasks: vec![t],
                updates: [("create/destroy update".to_string(), 1)].into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            render_diff(&d, false),
            "+/- Job: \"example\"\n\
             +/- Task Group: \"cache\" (1 create/destroy update)\n  \
             +/- Task: \"redis\" (forces create/destroy update)\n    \
             +/- Config {\n      \
             +/- image:           \"redis:3.2\" => \"redis:7\"\n          \
             port_map[0][db]: \"6379\"\n        \
             }\n"
        );
    }

    #[test]
    fn unchanged_job_has_no_markers() {
        let d = JobDiff {
            diff_type: "None".into(),
            id: "example".into(),
            task_groups: vec![TaskGroupDiff {
                diff_type: "None".into(),
                name: "cache".into(),
                tasks: vec![task("None", "redis")],
                updates: [("ignore".to_string(), 1)].into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            render_diff(&d, false),
            "Job: \"example\"\nTask Group: \"cache\" (1 ignore)\n  Task: \"redis\"\n"
        );
    }

    #[test]
    fn plan_output_with_failures_and_exit_code() {
        let mut plan = JobPlanResponse {
            job_modify_index: 7,
            ..Default::default()
        };
        let mut m = AllocMetric {
            nodes_evaluated: 1,
            ..Default::default()
        };
        m.constraint_filtered
            .insert("${attr.kernel.name} = windows".into(), 1);
        plan.failed_tg_allocs.insert("cache".into(), m);
        let text = render_plan(&plan, "example.nomad.hcl", false);
        assert!(
            text.starts_with(
                "Scheduler dry-run:\n- WARNING: Failed to place all allocations.\n  \
             Task Group \"cache\" (failed to place 1 allocation):\n    \
             * Constraint \"${attr.kernel.name} = windows\": 1 nodes excluded by filter\n\n\
             Job Modify Index: 7\nTo submit the job with version verification run:\n\n\
             caravan job run -check-index 7 example.nomad.hcl\n\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("plan's results are\npotentially invalid.\n"));
        assert!(!changes_allocs(&plan));
        plan.annotations.desired_tg_updates.insert(
            "cache".into(),
            structs::DesiredUpdates {
                place: 1,
                ..Default::default()
            },
        );
        assert!(changes_allocs(&plan));
    }
}
