//! The startup banner, in Nomad's shape: sorted, right-aligned keys.

use super::settings::AgentSettings;

/// Prints the banner to stdout.
pub(super) fn print(s: &AgentSettings, node_id: Option<&str>) {
    let mut rows: Vec<(&str, String)> = vec![
        (
            "Advertise Addrs",
            format!(
                "HTTP: {}; RPC: {}; Serf: {}",
                s.http_advertise(),
                s.rpc_advertise(),
                s.serf_advertise()
            ),
        ),
        (
            "Bind Addrs",
            format!(
                "HTTP: [{}]; RPC: {}; Serf: {}",
                s.http_bind(),
                s.rpc_bind(),
                s.serf_bind()
            ),
        ),
        ("Client", s.client_enabled.to_string()),
        ("Log Level", s.log_level.to_ascii_uppercase()),
        ("Region", format!("{} (DC: {})", s.region, s.datacenter)),
        ("Server", s.server_enabled.to_string()),
        ("Version", structs::VERSION.to_string()),
    ];
    if let Some(id) = node_id {
        rows.push(("Node Id", id.to_string()));
    }
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    if s.config_files.is_empty() {
        out.push_str("==> No configuration files loaded\n");
    } else {
        for f in &s.config_files {
            out.push_str(&format!("==> Loaded configuration from {f}\n"));
        }
    }
    out.push_str("==> Starting Caravan agent...\n==> Caravan agent configuration:\n\n");
    for (k, v) in rows {
        out.push_str(&format!("{:>width$}: {v}\n", k, width = width + 7));
    }
    out.push_str("\n==> Caravan agent started! Log data will stream in below:\n");
    println!("{out}");
}
