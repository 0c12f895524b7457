//! The Prometheus textfile that `SOCKTUNE_STATS_PROM` keeps is read by a real node_exporter
//! (Debian's prometheus-node-exporter, textfile collector only): every socktune counter comes out
//! of its /metrics with the arms and roles as labels, and the collector reports no scrape error.
//! promtool (Debian's prometheus) checks the file too. examples/grafana-dashboard.json charts
//! these counters; a test checks that it names only metrics the file has.
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every metric family the library writes (crates/socktune-core/src/record.rs `render_prom`).
const FAMILIES: [&str; 12] = [
    "socktune_connections_total",
    "socktune_segments_total",
    "socktune_responses_total",
    "socktune_retransmits_total",
    "socktune_syn_data_total",
    "socktune_fastopen_attempts_total",
    "socktune_fastopen_child_total",
    "socktune_fastopen_failures_total",
    "socktune_busy_seconds_total",
    "socktune_rwnd_limited_seconds_total",
    "socktune_sndbuf_limited_seconds_total",
    "socktune_stats_dropped_total",
];

/// Runs an A/B split keep-alive scenario that leaves its textfile in `dir/socktune.prom`.
fn textfile(dir: &Path) -> String {
    let prom = dir.join("socktune.prom");
    Scenario::new(
        "prom",
        "python3 {progs}/ka_client.py 127.0.0.1 {port} 5 /f100 10",
    )
    .server(HTTP11_SERVER_V4)
    .server_env(&[
        "SOCKTUNE_CORK=1",
        "SOCKTUNE_AB=50",
        &format!("SOCKTUNE_STATS_PROM={}", prom.display()),
    ])
    .run();
    std::fs::read_to_string(&prom).expect("the server left its textfile")
}

struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// GET /metrics from a node_exporter that serves the textfiles of `dir`, once it answers.
fn scrape(dir: &Path) -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let exporter = Command::new("prometheus-node-exporter")
        .arg("--collector.disable-defaults")
        .arg("--collector.textfile")
        .arg(format!("--collector.textfile.directory={}", dir.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-node-exporter is missing: run: bash scripts/setup.sh");
    let _exporter = Exporter(exporter);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) {
            c.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut body = String::new();
            c.read_to_string(&mut body).unwrap();
            return body;
        }
        assert!(Instant::now() < deadline, "node_exporter never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn node_exporter_serves_every_counter_without_a_scrape_error() {
    needs_root!(NETNS);
    let dir = scratch("node-exporter");
    let text = textfile(&dir);
    let metrics = scrape(&dir);
    assert!(
        metrics.contains("node_textfile_scrape_error 0"),
        "the textfile collector failed:\n{metrics}"
    );
    for family in FAMILIES {
        let series = metrics
            .lines()
            .filter(|l| l.starts_with(family) && !l.starts_with('#'))
            .count();
        assert!(series > 0, "{family} missing from /metrics:\n{metrics}");
    }
    for labels in [
        "socktune_connections_total{arm=\"A\",role=\"server\"}",
        "socktune_connections_total{arm=\"B\",role=\"server\"}",
        "socktune_segments_total{arm=\"B\",dir=\"out\",role=\"server\"}",
    ] {
        assert!(
            metrics.contains(labels),
            "{labels} missing from /metrics:\n{metrics}\nthe textfile:\n{text}"
        );
    }
    let total: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("socktune_connections_total{"))
        .filter_map(|l| l.rsplit(" ").next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(total, 10, "every connection counted once:\n{metrics}");
}

#[test]
fn promtool_accepts_the_textfile() {
    needs_root!(NETNS);
    let dir = scratch("promtool");
    let text = textfile(&dir);
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is missing: run: bash scripts/setup.sh");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\nthe textfile:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_grafana_dashboard_charts_only_metrics_the_library_writes() {
    let dashboard = std::fs::read_to_string(repo().join("examples/grafana-dashboard.json"))
        .expect("examples/grafana-dashboard.json");
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("valid JSON");
    let panels = json["panels"].as_array().expect("panels");
    assert!(panels.len() >= 2, "a dashboard with its panels");
    let mut named = 0;
    for expr in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
    {
        for word in expr.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if word.starts_with("socktune_") {
                assert!(FAMILIES.contains(&word), "{word} is no socktune metric");
                named += 1;
            }
        }
    }
    assert!(named > 0, "the dashboard charts socktune's counters");
}
