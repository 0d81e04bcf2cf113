//! The report: a markdown table per benchmark, printed and written into its own section of
//! `BENCHMARKS.md` (between `<!-- name:begin -->` and `<!-- name:end -->`), so each binary
//! refreshes its part and leaves the others alone.

use std::fmt::Write as _;
use std::path::Path;

/// A markdown table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        out.push_str(&line(&self.header));
        let rule: Vec<String> = self.header.iter().map(|_| "---".to_owned()).collect();
        out.push_str(&line(&rule));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// Events (or entries) per second, rounded for reading.
pub fn rate(per_sec: f64) -> String {
    if per_sec >= 100.0 {
        format!("{per_sec:.0}")
    } else {
        format!("{per_sec:.1}")
    }
}

/// A ratio `ours / baseline` as `0.93×`; `n/a` without a baseline.
pub fn ratio(ours: f64, baseline: Option<f64>) -> String {
    match baseline {
        Some(b) if b > 0.0 => format!("{:.2}×", ours / b),
        _ => "n/a".to_owned(),
    }
}

/// What machine the numbers come from (cores, memory, kernel, PostgreSQL version).
pub fn machine(pg_version: Option<&str>) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or_else(
            || "?".to_owned(),
            |kb| format!("{:.0}", kb / 1024.0 / 1024.0),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let mut s = format!("{cores} cores, {mem_gib} GiB, Linux {kernel}");
    if let Some(v) = pg_version {
        let _ = write!(s, ", {v}");
    }
    s
}

/// Replaces (or appends) the section `name` of the markdown file at `path` with `body`.
pub fn write_section(path: &Path, name: &str, body: &str) -> std::io::Result<()> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let current = std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let section = format!("{begin}\n{}\n{end}", body.trim_end());
    let next = match (current.find(&begin), current.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{}{}", &current[..b], section, &current[e + end.len()..])
        }
        _ => format!("{}\n{section}\n", current.trim_end()),
    };
    std::fs::write(path, next)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sections_are_replaced_in_place_and_others_kept() {
        let dir = std::env::temp_dir().join(format!("ordonis-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("B.md");
        write_section(&path, "a", "first a").unwrap();
        write_section(&path, "b", "first b").unwrap();
        write_section(&path, "a", "second a").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("second a") && !text.contains("first a"));
        assert!(text.contains("first b"));
        assert!(text.find("second a") < text.find("first b"), "order kept");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tables_and_ratios_render() {
        let mut t = Table::new(&["x", "y"]);
        t.row(vec!["1".into(), ratio(90.0, Some(100.0))]);
        assert_eq!(t.markdown(), "| x | y |\n| --- | --- |\n| 1 | 0.90× |\n");
        assert_eq!(ratio(1.0, None), "n/a");
        assert_eq!(rate(12345.6), "12346");
    }
}
