//! The daemons' metrics, through the `metrics` crate's handles and rendered by
//! `metrics-exporter-prometheus` for `GET /metrics`.
//!
//! Each daemon has its own [`Registry`] (a Prometheus recorder it owns), not the process-wide
//! recorder: a test runs several nodes and keepers in one process, and each must show only its
//! own counts. A daemon registers every series once at start ([`Registry::counter`],
//! [`Registry::gauge`]; labelled ones through a [`Family`]) and keeps the handles; values it also
//! reads back (the head, the last poll) stay in its own state and are copied to their gauges when
//! the page is rendered.

use std::sync::Arc;

use metrics::{Counter, Gauge, Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

static METADATA: Metadata<'static> = Metadata::new("gridlease", Level::INFO, None);

/// One daemon's metrics.
#[derive(Clone)]
pub struct Registry {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        Self {
            recorder: Arc::new(recorder),
            handle,
        }
    }

    /// The counter `name`, described by `help`.
    pub fn counter(&self, name: &'static str, help: &'static str) -> Counter {
        self.describe_counter(name, help);
        self.recorder
            .register_counter(&Key::from_static_name(name), &METADATA)
    }

    /// The gauge `name`, described by `help`.
    pub fn gauge(&self, name: &'static str, help: &'static str) -> Gauge {
        self.describe_gauge(name, help);
        self.recorder
            .register_gauge(&Key::from_static_name(name), &METADATA)
    }

    /// Counters `name{label="..."}`, one per value of `label`.
    pub fn counters(&self, name: &'static str, help: &'static str, label: &'static str) -> Family {
        self.describe_counter(name, help);
        self.family(name, label)
    }

    /// Gauges `name{label="..."}`, one per value of `label`.
    pub fn gauges(&self, name: &'static str, help: &'static str, label: &'static str) -> Family {
        self.describe_gauge(name, help);
        self.family(name, label)
    }

    /// The page for `GET /metrics` (Prometheus text format 0.0.4).
    pub fn render(&self) -> String {
        self.handle.render()
    }

    fn family(&self, name: &'static str, label: &'static str) -> Family {
        Family {
            recorder: self.recorder.clone(),
            name,
            label,
        }
    }

    fn describe_counter(&self, name: &'static str, help: &'static str) {
        self.recorder.describe_counter(
            KeyName::from_const_str(name),
            None::<Unit>,
            SharedString::const_str(help),
        );
    }

    fn describe_gauge(&self, name: &'static str, help: &'static str) {
        self.recorder.describe_gauge(
            KeyName::from_const_str(name),
            None::<Unit>,
            SharedString::const_str(help),
        );
    }
}

/// A labelled series: one counter or gauge per value of its label, registered on first use.
#[derive(Clone)]
pub struct Family {
    recorder: Arc<PrometheusRecorder>,
    name: &'static str,
    label: &'static str,
}

impl std::fmt::Debug for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.name)
            .field("label", &self.label)
            .finish()
    }
}

impl Family {
    fn key(&self, value: &str) -> Key {
        Key::from_parts(self.name, vec![Label::new(self.label, value.to_owned())])
    }

    /// The counter for `value`.
    pub fn counter(&self, value: &str) -> Counter {
        self.recorder.register_counter(&self.key(value), &METADATA)
    }

    /// The gauge for `value`.
    pub fn gauge(&self, value: &str) -> Gauge {
        self.recorder.register_gauge(&self.key(value), &METADATA)
    }
}

#[cfg(test)]
mod tests {
    use super::Registry;

    /// Two registries in one process keep their own counts, and the page carries help, type,
    /// labels (escaped) and values a Prometheus scraper reads.
    #[test]
    fn each_daemon_renders_only_its_own_series() {
        let (a, b) = (Registry::new(), Registry::new());
        a.counter("x_bids_total", "Bids sent.").increment(3);
        b.counter("x_bids_total", "Bids sent.").increment(5);
        let skipped = a.counters("x_skipped_total", "Skipped, by reason.", "reason");
        skipped.counter("price").increment(1);
        skipped.counter("price").increment(1);
        skipped.counter("say \"no\"").increment(1);
        a.gauges("x_credit", "Credit, by token.", "token")
            .gauge("0xabc")
            .set(1.5e20);
        let page = a.render();
        for line in [
            "# HELP x_bids_total Bids sent.",
            "# TYPE x_bids_total counter",
            "x_bids_total 3",
            "x_skipped_total{reason=\"price\"} 2",
            "x_skipped_total{reason=\"say \\\"no\\\"\"} 1",
            "# TYPE x_credit gauge",
            "x_credit{token=\"0xabc\"} 150000000000000000000",
        ] {
            assert!(
                page.lines().any(|l| l == line),
                "{line} missing from\n{page}"
            );
        }
        assert!(b.render().lines().any(|l| l == "x_bids_total 5"));
        assert!(!b.render().contains("x_skipped_total"));
    }
}
