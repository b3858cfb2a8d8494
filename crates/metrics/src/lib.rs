//! Process-wide counters and histograms, rendered as Prometheus text at `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// A fixed-bucket histogram of seconds (Prometheus `_bucket`, `_sum`, `_count`).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// 1 ms … 10 s: event-to-alert and detector-call latencies.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: (0..bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, seconds: f64) {
        for (i, b) in self.bounds.iter().enumerate() {
            if seconds <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Observations at or under `seconds` (rounded to the bucket bound at or above it).
    pub fn count_within(&self, seconds: f64) -> u64 {
        match self.bounds.iter().position(|b| *b >= seconds) {
            Some(i) => self.buckets[i].load(Ordering::Relaxed),
            None => self.count(),
        }
    }

    /// Approximate quantile from the buckets (upper bound of the bucket holding it).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let want = (q * n as f64).ceil() as u64;
        self.bounds
            .iter()
            .zip(&self.buckets)
            .find(|(_, c)| c.load(Ordering::Relaxed) >= want)
            .map(|(b, _)| *b)
    }

    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count());
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {}", self.count());
    }
}

/// Prometheus text exposition (format 0.0.4), written family by family.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// A label value with `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Exposition {
    pub fn new() -> Self {
        Exposition::default()
    }

    /// Starts a family: `kind` is `counter` or `gauge`.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        use std::fmt::Write;
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        use std::fmt::Write;
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", format_value(value));
        self
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) -> &mut Self {
        self.family(name, kind, help).sample(name, &[], value)
    }

    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) -> &mut Self {
        h.render(name, help, &mut self.out);
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_quantiles() {
        let h = Histogram::new(LATENCY_BOUNDS);
        for ms in [1.0, 3.0, 4.0, 30.0, 900.0] {
            h.observe(ms / 1000.0);
        }
        assert_eq!(h.count(), 5);
        assert_eq!(h.count_within(0.005), 3);
        assert_eq!(h.quantile(0.5), Some(0.005));
        assert_eq!(h.quantile(1.0), Some(1.0));
        let mut s = String::new();
        h.render("x_seconds", "test", &mut s);
        assert!(s.contains("x_seconds_count 5"));
    }

    #[test]
    fn exposition_escapes_labels_and_formats_values() {
        let mut x = Exposition::new();
        x.family("a_total", "counter", "things")
            .sample("a_total", &[("source", "git\"hub\\\n")], 3.0)
            .single("b", "gauge", "ratio", 0.25);
        let s = x.finish();
        assert!(s.contains("# TYPE a_total counter\n"), "{s}");
        assert!(
            s.contains("a_total{source=\"git\\\"hub\\\\\\n\"} 3\n"),
            "{s}"
        );
        assert!(s.contains("b 0.25\n"), "{s}");
    }
}
