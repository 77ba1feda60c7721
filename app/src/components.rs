//! Small components shared by the pages.

use leptos::prelude::*;

/// A Plotly chart. The figure travels as JSON in a data attribute; `/charts.js` draws every
/// `[data-plot]` element, also ones that appear or change after hydration, so the same markup
/// works server-rendered, hydrated and client-rendered.
#[component]
pub fn PlotlyChart(
    /// The Plotly figure (`{"data": [...], "layout": {...}}`) as JSON.
    #[prop(into)]
    figure: Signal<String>,
    /// Accessible name of the chart.
    #[prop(into)]
    label: String,
) -> impl IntoView {
    view! {
        <figure class="chart">
            <div class="plot" role="img" aria-label=label data-plot=move || figure.get()></div>
        </figure>
    }
}

/// Formats a metric value for a table cell.
pub fn fmt_metric(v: Option<f64>) -> String {
    match v {
        None => "—".to_string(),
        Some(x) if x.is_nan() => "—".to_string(),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.4}"),
    }
}

/// Formats an optional statistic compactly.
pub fn fmt_stat(v: Option<f64>) -> String {
    match v {
        None => String::new(),
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.1}"),
        Some(x) => format!("{x:.4}"),
    }
}

/// An error box for a failed server call.
#[component]
pub fn ErrorBox(#[prop(into)] message: String) -> impl IntoView {
    view! { <p class="error" role="alert">{message}</p> }
}

/// Text safe inside `<title>`: leptos_meta writes the title unescaped during SSR, and a run name
/// such as `</title><script>…` must not end the element, so angle brackets become look-alikes.
pub fn title_text(s: &str) -> String {
    s.replace('<', "‹").replace('>', "›")
}
