//! Prometheus metrics for the server: request counts by route and status, and a latency
//! histogram per route, kept in atomics so recording never takes a lock.
//!
//! The text exposition format is written by hand: it is a few lines of `name{labels} value`
//! and a client library would be the largest dependency of the server.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The routes the server labels metrics with; everything else counts as `other`.
pub const ROUTES: [&str; 8] = [
    "/v1/embeddings",
    "/v1/chat/completions",
    "/v1/completions",
    "/invocations",
    "/health",
    "/v1/models",
    "/metrics",
    "other",
];

/// Status codes counted one by one; the rest are counted under their class (`4xx`, `5xx`).
const STATUSES: [u16; 12] = [200, 400, 404, 405, 408, 413, 415, 422, 500, 503, 504, 0];

/// Upper bounds of the latency buckets, in seconds.
pub const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

#[derive(Debug, Default)]
struct RouteMetrics {
    /// Indexed like `STATUSES`; the last slot counts statuses not listed.
    by_status: [AtomicU64; STATUSES.len()],
    /// Other statuses by class: 1xx..5xx.
    by_class: [AtomicU64; 6],
    /// Non-cumulative bucket counts; cumulated when rendered.
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// Request counters and latency histograms for every route.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: [RouteMetrics; ROUTES.len()],
    /// Generations finished, and of those, stopped because the client went away.
    generations: AtomicU64,
    generations_cancelled: AtomicU64,
    generated_tokens: AtomicU64,
}

/// The metrics label for a request path.
pub fn route_label(path: &str) -> &'static str {
    ROUTES
        .iter()
        .copied()
        .find(|r| *r == path)
        .unwrap_or("other")
}

impl Metrics {
    /// Count one finished request.
    pub fn record(&self, route: &str, status: u16, elapsed: Duration) {
        let i = ROUTES
            .iter()
            .position(|r| *r == route)
            .unwrap_or(ROUTES.len() - 1);
        let m = &self.routes[i];
        match STATUSES.iter().position(|&s| s == status) {
            Some(j) => m.by_status[j].fetch_add(1, Ordering::Relaxed),
            None => m.by_class[usize::from(status / 100).min(5)].fetch_add(1, Ordering::Relaxed),
        };
        let secs = elapsed.as_secs_f64();
        if let Some(b) = BUCKETS.iter().position(|&le| secs <= le) {
            m.buckets[b].fetch_add(1, Ordering::Relaxed);
        }
        m.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        m.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Count one finished generation of `tokens` tokens.
    pub fn record_generation(&self, tokens: usize, cancelled: bool) {
        self.generations.fetch_add(1, Ordering::Relaxed);
        self.generated_tokens
            .fetch_add(tokens as u64, Ordering::Relaxed);
        if cancelled {
            self.generations_cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Generations stopped because their client disconnected.
    pub fn generations_cancelled(&self) -> u64 {
        self.generations_cancelled.load(Ordering::Relaxed)
    }

    /// Number of requests recorded for `route` with `status`.
    pub fn count(&self, route: &str, status: u16) -> u64 {
        let Some(i) = ROUTES.iter().position(|r| *r == route) else {
            return 0;
        };
        let m = &self.routes[i];
        match STATUSES.iter().position(|&s| s == status) {
            Some(j) => m.by_status[j].load(Ordering::Relaxed),
            None => 0,
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP realizar_requests_total HTTP requests served, by route and status.\n");
        out.push_str("# TYPE realizar_requests_total counter\n");
        for (route, m) in ROUTES.iter().zip(&self.routes) {
            for (status, c) in STATUSES.iter().zip(&m.by_status) {
                let c = c.load(Ordering::Relaxed);
                if *status != 0 && c > 0 {
                    let _ = writeln!(
                        out,
                        "realizar_requests_total{{route=\"{route}\",status=\"{status}\"}} {c}"
                    );
                }
            }
            for (class, c) in m.by_class.iter().enumerate() {
                let c = c.load(Ordering::Relaxed);
                if c > 0 {
                    let _ = writeln!(
                        out,
                        "realizar_requests_total{{route=\"{route}\",status=\"{class}xx\"}} {c}"
                    );
                }
            }
        }
        out.push_str(
            "# HELP realizar_request_duration_seconds Time from request to response, by route.\n",
        );
        out.push_str("# TYPE realizar_request_duration_seconds histogram\n");
        for (route, m) in ROUTES.iter().zip(&self.routes) {
            let count = m.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (le, b) in BUCKETS.iter().zip(&m.buckets) {
                cumulative += b.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "realizar_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "realizar_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let sum = m.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "realizar_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "realizar_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        for (name, help, c) in [
            (
                "realizar_generations_total",
                "Text generations finished (cancelled ones included).",
                &self.generations,
            ),
            (
                "realizar_generations_cancelled_total",
                "Text generations stopped because the client disconnected.",
                &self.generations_cancelled,
            ),
            (
                "realizar_generated_tokens_total",
                "Tokens sampled by text generations.",
                &self.generated_tokens,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", c.load(Ordering::Relaxed));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_histogram_render() {
        let m = Metrics::default();
        m.record("/invocations", 200, Duration::from_micros(300));
        m.record("/invocations", 200, Duration::from_millis(3));
        m.record("/invocations", 400, Duration::from_micros(50));
        m.record("/nope", 404, Duration::from_micros(10));
        m.record("/health", 418, Duration::from_micros(10));
        assert_eq!(m.count("/invocations", 200), 2);
        let text = m.render();
        assert!(
            text.contains("realizar_requests_total{route=\"/invocations\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("realizar_requests_total{route=\"/invocations\",status=\"400\"} 1\n")
        );
        assert!(text.contains("realizar_requests_total{route=\"other\",status=\"404\"} 1\n"));
        assert!(text.contains("realizar_requests_total{route=\"/health\",status=\"4xx\"} 1\n"));
        assert!(text.contains(
            "realizar_request_duration_seconds_bucket{route=\"/invocations\",le=\"0.0005\"} 2\n"
        ));
        assert!(text.contains(
            "realizar_request_duration_seconds_bucket{route=\"/invocations\",le=\"0.005\"} 3\n"
        ));
        assert!(
            text.contains("realizar_request_duration_seconds_count{route=\"/invocations\"} 3\n")
        );
    }

    #[test]
    fn unknown_paths_are_other() {
        assert_eq!(route_label("/v1/embeddings"), "/v1/embeddings");
        assert_eq!(route_label("/admin"), "other");
    }
}
