//! Plotly figures (as JSON) built from the engine's plain results.

use plotly::common::Title;
use plotly::layout::{Axis, BarMode, Layout, Legend};
use plotly::common::ErrorData;
use plotly::common::ErrorType;
use plotly::{Bar, Plot};
use strata_app::model::MetricsResult;
use strata_app::model::Task;

use crate::eval::Distribution;

/// Overlaid histograms of one model's scores per label class (or predictions next to labels).
pub fn distribution_figure(d: &Distribution, task: Task, model: &str) -> String {
    let mut plot = Plot::new();
    let centres: Vec<f64> = d.edges.iter().map(|e| e + d.width / 2.0).collect();
    for (name, counts) in &d.series {
        let trace = Bar::new(centres.clone(), counts.clone()).name(name.as_str()).opacity(0.6).width(d.width);
        plot.add_trace(trace);
    }
    let x_title = match task {
        Task::Binary => format!("{model}: P(label = 1)"),
        _ => format!("{model} / label (middle 99% of values)"),
    };
    plot.set_layout(
        Layout::new()
            .bar_mode(BarMode::Overlay)
            .x_axis(Axis::new().title(Title::with_text(x_title)))
            .y_axis(Axis::new().title(Title::with_text("examples (weighted)")))
            .legend(Legend::new())
            .height(360)
            .margin(plotly::layout::Margin::new().top(20).bottom(50).left(60).right(20)),
    );
    plot.to_json()
}

/// One bar per slice for `metric` (at `threshold` when given), with its interval as error bars
/// and the overall value as a dashed line.
pub fn slice_bars(r: &MetricsResult, metric: &str, threshold: Option<f64>) -> String {
    let mut labels = Vec::new();
    let (mut values, mut plus, mut minus) = (Vec::new(), Vec::new(), Vec::new());
    let mut overall = None;
    for s in &r.slices {
        let Some(e) = s.estimate(metric, threshold) else { continue };
        let Some(v) = e.value else { continue };
        if s.key.is_empty() {
            overall = Some(v);
            continue;
        }
        labels.push(format!("{} (n={})", s.label(), s.count));
        values.push(v);
        plus.push(e.hi.map(|h| (h - v).max(0.0)).unwrap_or(0.0));
        minus.push(e.lo.map(|l| (v - l).max(0.0)).unwrap_or(0.0));
    }
    let name = match threshold {
        Some(t) => format!("{metric} @ {t}"),
        None => metric.to_string(),
    };
    let bars = Bar::new(labels.clone(), values)
        .name(name.as_str())
        .error_y(ErrorData::new(ErrorType::Data).array(plus).array_minus(minus).visible(true));
    let mut plot = Plot::new();
    plot.add_trace(bars);
    let mut layout = Layout::new()
        .y_axis(Axis::new().title(Title::with_text(name.as_str())))
        .height(380)
        .margin(plotly::layout::Margin::new().top(20).bottom(120).left(60).right(20));
    if let (Some(v), false) = (overall, labels.is_empty()) {
        layout = layout.shapes(vec![plotly::layout::Shape::new()
            .shape_type(plotly::layout::ShapeType::Line)
            .x_ref("paper").x0(0.0).x1(1.0).y0(v).y1(v)
            .line(plotly::layout::ShapeLine::new().dash(plotly::common::DashType::Dash).color("#555"))]);
    }
    plot.set_layout(layout);
    plot.to_json()
}
