//! Plotly figures (as JSON) built from the engine's plain results.

use plotly::common::Title;
use plotly::layout::{Axis, BarMode, Layout, Legend};
use plotly::{Bar, Plot};
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
