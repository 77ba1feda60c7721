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

/// Microseconds since the Unix epoch as `YYYY-MM-DD HH:MM` (UTC), without a date library.
pub fn fmt_epoch_micros(us: f64) -> String {
    let secs = (us / 1e6).floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_micros_format_as_utc_dates() {
        assert_eq!(fmt_epoch_micros(0.0), "1970-01-01 00:00");
        assert_eq!(fmt_epoch_micros(1_704_067_821_000_000.0), "2024-01-01 00:10");
        assert_eq!(fmt_epoch_micros(1_709_164_800_000_000.0), "2024-02-29 00:00");
    }

    #[test]
    fn titles_cannot_close_the_title_element() {
        assert_eq!(title_text("</title><b>"), "‹/title›‹b›");
    }
}

/// "Copy link": copies the page's full URL (which holds the whole view state) to the clipboard.
/// `/charts.js` handles the click, so it works before hydration too.
#[component]
pub fn CopyLink() -> impl IntoView {
    view! { <button type="button" class="copy-link" data-copy-link="">"Copy link"</button> }
}
