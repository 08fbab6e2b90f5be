//! `caravan job plan`: the diff against the registered job and a scheduler dry run.

use super::format::alloc_metrics;
use super::jobfile::{self, FileArgs};
use super::Global;
use clap::Args;
use structs::{FieldDiff, JobDiff, JobPlanRequest, JobPlanResponse, ObjectDiff};

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

fn field_line(f: &FieldDiff, indent: &str) -> String {
    let m = marker(&f.diff_type);
    let value = match f.diff_type.as_str() {
        "Added" => format!("{:?}", f.new),
        "Deleted" => format!("{:?}", f.old),
        _ => format!("{:?} => {:?}", f.old, f.new),
    };
    let ann = if f.annotations.is_empty() {
        String::new()
    } else {
        format!(" ({})", f.annotations.join(", "))
    };
    format!("{indent}{m} {}: {value}{ann}\n", f.name)
}

fn object_lines(o: &ObjectDiff, indent: &str) -> String {
    let mut out = format!("{indent}{} {} {{\n", marker(&o.diff_type), o.name);
    let inner = format!("{indent}  ");
    for f in &o.fields {
        out.push_str(&field_line(f, &inner));
    }
    for sub in &o.objects {
        out.push_str(&object_lines(sub, &inner));
    }
    out.push_str(&format!("{indent}  }}\n"));
    out
}

/// Renders a job diff in Nomad's format.
pub(crate) fn render_diff(d: &JobDiff) -> String {
    let mut out = format!("{} Job: {:?}\n", marker(&d.diff_type), d.id)
        .trim_start()
        .to_string();
    if d.diff_type == "None" {
        out = format!("Job: {:?}\n", d.id);
    }
    if d.diff_type == "Edited" {
        for f in &d.fields {
            out.push_str(&field_line(f, ""));
        }
        for o in &d.objects {
            out.push_str(&object_lines(o, ""));
        }
    }
    for g in &d.task_groups {
        let updates: Vec<String> = [
            "create",
            "create/destroy update",
            "destroy",
            "in-place update",
            "ignore",
        ]
        .iter()
        .filter_map(|k| g.updates.get(*k).map(|n| format!("{n} {k}")))
        .collect();
        let counts = if updates.is_empty() {
            String::new()
        } else {
            format!(" ({})", updates.join(", "))
        };
        let m = marker(&g.diff_type);
        let head = if m.is_empty() {
            String::new()
        } else {
            format!("{m} ")
        };
        out.push_str(&format!("{head}Task Group: {:?}{counts}\n", g.name));
        if g.diff_type == "Edited" {
            for f in &g.fields {
                out.push_str(&field_line(f, "  "));
            }
            for o in &g.objects {
                out.push_str(&object_lines(o, "  "));
            }
        }
        for t in &g.tasks {
            let m = marker(&t.diff_type);
            let head = if m.is_empty() {
                "    ".to_string()
            } else {
                format!("  {m} ")
            };
            let ann = if t.annotations.is_empty() {
                String::new()
            } else {
                format!(" ({})", t.annotations.join(", "))
            };
            out.push_str(&format!("{head}Task: {:?}{ann}\n", t.name));
            if t.diff_type == "Edited" {
                for f in &t.fields {
                    out.push_str(&field_line(f, "    "));
                }
                for o in &t.objects {
                    out.push_str(&object_lines(o, "    "));
                }
            }
        }
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
    let plan = client.plan(&JobPlanRequest {
        job: Some(parsed.job.clone()),
        diff: true,
        policy_override: false,
    })?;
    if let Some(diff) = &plan.diff {
        println!("{}", render_diff(diff));
    }
    println!("Scheduler dry-run:");
    if plan.failed_tg_allocs.is_empty() {
        println!("- All tasks successfully allocated.");
    } else {
        println!("- WARNING: Failed to place all allocations.");
        for (group, m) in &plan.failed_tg_allocs {
            let n = m.coalesced_failures + 1;
            println!(
                "  Task Group {group:?} (failed to place {n} allocation{}):",
                if n == 1 { "" } else { "s" }
            );
            print!("{}", alloc_metrics(m, "    "));
        }
    }
    println!();
    println!("Job Modify Index: {}", plan.job_modify_index);
    println!("To submit the job with version verification run:");
    println!();
    println!(
        "caravan job run -check-index {} {}",
        plan.job_modify_index, a.file.file
    );
    println!();
    println!("When running the job with the check-index flag, the job will only be run if the");
    println!("job modify index given matches the server-side version. If the index has");
    println!("changed, another user has modified the job and the plan's results are");
    println!("potentially invalid.");
    Ok(if changes_allocs(&plan) { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use structs::{TaskDiff, TaskGroupDiff};

    #[test]
    fn renders_count_change() {
        let d = JobDiff {
            diff_type: "Edited".into(),
            id: "web".into(),
            task_groups: vec![TaskGroupDiff {
                diff_type: "Edited".into(),
                name: "web".into(),
                fields: vec![FieldDiff {
                    diff_type: "Edited".into(),
                    name: "Count".into(),
                    old: "3".into(),
                    new: "1".into(),
                    annotations: vec![],
                }],
                tasks: vec![TaskDiff {
                    diff_type: "None".into(),
                    name: "server".into(),
                    ..Default::default()
                }],
                updates: [("destroy".to_string(), 2), ("ignore".to_string(), 1)].into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = render_diff(&d);
        assert_eq!(
            text,
            "+/- Job: \"web\"\n+/- Task Group: \"web\" (2 destroy, 1 ignore)\n  +/- Count: \"3\" => \"1\"\n    Task: \"server\"\n"
        );
    }

    #[test]
    fn renders_new_job() {
        let d = JobDiff {
            diff_type: "Added".into(),
            id: "web".into(),
            task_groups: vec![TaskGroupDiff {
                diff_type: "Added".into(),
                name: "cache".into(),
                tasks: vec![TaskDiff {
                    diff_type: "Added".into(),
                    name: "redis".into(),
                    annotations: vec!["forces create".into()],
                    ..Default::default()
                }],
                updates: [("create".to_string(), 1)].into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            render_diff(&d),
            "+ Job: \"web\"\n+ Task Group: \"cache\" (1 create)\n  + Task: \"redis\" (forces create)\n"
        );
    }
}
