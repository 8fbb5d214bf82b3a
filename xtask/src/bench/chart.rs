//! The PNG chart: dnsperf QPS, kxdpgun replies/s and probe p99 latency per server.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// Font for the chart's text (Debian package fonts-dejavu-core, from scripts/bootstrap).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

pub struct Bar {
    pub label: String,
    pub dnsperf_qps: f64,
    pub kxdpgun_pps: f64,
    pub p99_us: f64,
}

/// A panel: title, the value it shows, its colour.
type Series = (&'static str, fn(&Bar) -> f64, RGBColor);

pub fn draw(path: &Path, title: &str, bars: &[Bar]) -> anyhow::Result<()> {
    let font =
        std::fs::read(FONT).with_context(|| format!("reading {FONT} (run scripts/bootstrap)"))?;
    // plotters keeps registered fonts for the life of the process.
    let font: &'static [u8] = Box::leak(font.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, font)
        .map_err(|_| anyhow::anyhow!("bad font {FONT}"))?;

    let root = BitMapBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!("dns-xdp vs the field, {title}"),
        ("sans-serif", 26),
    )?;
    let panels = root.split_evenly((3, 1));
    let series: [Series; 3] = [
        ("dnsperf QPS", |b| b.dnsperf_qps, BLUE),
        ("kxdpgun replies/s", |b| b.kxdpgun_pps, GREEN),
        ("probe p99 latency under load (µs)", |b| b.p99_us, RED),
    ];
    for (panel, (name, value, color)) in panels.iter().zip(series) {
        let max = bars.iter().map(value).fold(1.0, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(panel)
            .caption(name, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(80)
            .build_cartesian_2d((0..bars.len().saturating_sub(1)).into_segmented(), 0.0..max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => {
                    bars.get(*i).map(|b| b.label.clone()).unwrap_or_default()
                }
                _ => String::new(),
            })
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style(("sans-serif", 14))
            .draw()?;
        chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), value(b)),
                ],
                color.filled(),
            );
            bar.set_margin(0, 0, 20, 20);
            bar
        }))?;
    }
    root.present()?;
    Ok(())
}
