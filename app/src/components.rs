//! Small components shared by the pages.

use leptos::prelude::*;

/// A Plotly chart. The figure travels as JSON in a data attribute; `/charts.js` draws every
/// `[data-plot]` element, also ones that appear or change after hydration, so the same markup
/// works server-rendered, hydrated and client-rendered. The `<figure>` carries the chart's name
/// (Plotly's toolbar buttons inside it stay reachable: an image role around them would hide them)
/// and, for screen readers and anyone who wants the numbers, a data table of the same figure.
#[component]
pub fn PlotlyChart(
    /// The Plotly figure (`{"data": [...], "layout": {...}}`) as JSON.
    #[prop(into)]
    figure: Signal<String>,
    /// Accessible name of the chart.
    #[prop(into)]
    label: String,
) -> impl IntoView {
    let name = label.clone();
    view! {
        <figure class="chart" aria-label=name>
            <div class="plot" data-plot=move || figure.get()></div>
            <ChartData figure label />
        </figure>
    }
}

static NAVIGATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the browser has moved on from the page it hydrated (a view changed in place, or a
/// client-side navigation): what renders from here on is not matched against server HTML.
pub fn navigated() -> bool {
    NAVIGATED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Notes, in the browser, every change of the URL after the first: see [`navigated`].
#[component]
pub fn NavigationWatch() -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    Effect::new(move |seen: Option<()>| {
        location.pathname.track();
        location.search.track();
        if seen.is_some() {
            NAVIGATED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
}

/// The numbers behind a chart, as tables in a closed `<details>` (native: opens without JavaScript).
/// Server-rendered and hydrated pages carry the tables (they read with JavaScript off); a view
/// rebuilt in the browser after that builds them only once opened, so a closed table costs an
/// interaction nothing (the fairness trade-off's holds about a thousand rows).
#[component]
pub fn ChartData(#[prop(into)] figure: Signal<String>, #[prop(into)] label: String) -> impl IntoView {
    let details = NodeRef::<leptos::html::Details>::new();
    let open = RwSignal::new(!navigated());
    view! {
        <details class="chart-data" node_ref=details on:toggle=move |_| if details.get_untracked().is_some_and(|d| d.open()) { open.set(true) }>
            <summary>"Data table"<span class="sr-only">{format!(" of {label}")}</span></summary>
            {move || open.get().then(|| chart_tables(&figure.get())).unwrap_or_default().into_iter().map(|t| view! {
                <div class="table-scroll" tabindex="0" role="region" aria-label=t.caption.clone()>
                    <table class="data">
                        <caption>{t.caption.clone()}</caption>
                        <thead><tr>{t.header.into_iter().map(|h| view! { <th scope="col">{h}</th> }).collect_view()}</tr></thead>
                        <tbody>{t.rows.into_iter().map(|r| view! { <tr>{r.into_iter().map(|c| view! { <td>{c}</td> }).collect_view()}</tr> }).collect_view()}</tbody>
                    </table>
                </div>
            }).collect_view()}
        </details>
    }
}

/// Rows shown per series in a chart's data table.
pub const CHART_TABLE_ROWS: usize = 200;

/// One series of a chart as a table.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartTable {
    pub caption: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// The series of a Plotly figure as tables: x, y (± error) per trace; a heatmap's z as a grid;
/// at most [`CHART_TABLE_ROWS`] rows each, the caption saying when more were left out.
pub fn chart_tables(figure: &str) -> Vec<ChartTable> {
    use serde_json::Value;
    let Ok(fig) = serde_json::from_str::<Value>(figure) else { return Vec::new() };
    let axis_title = |axis: &str, default: &str| {
        let t = &fig["layout"][axis]["title"];
        t["text"].as_str().or(t.as_str()).filter(|s| !s.is_empty()).unwrap_or(default).to_string()
    };
    let (x_title, y_title) = (axis_title("xaxis", "x"), axis_title("yaxis", "y"));
    let cell = |v: &Value| match v {
        Value::Number(n) => n.as_f64().map(|x| fmt_stat(Some(x))).unwrap_or_default(),
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    };
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let traces = list(&fig["data"]);
    traces.iter().enumerate().filter_map(|(i, t)| {
        let name = t["name"].as_str().filter(|s| !s.is_empty()).map(str::to_string).unwrap_or_else(|| format!("series {}", i + 1));
        let (x, y, z) = (list(&t["x"]), list(&t["y"]), list(&t["z"]));
        if !z.is_empty() {
            let header = std::iter::once(format!("{y_title} ↓ / {x_title} →")).chain(x.iter().map(cell)).collect();
            let rows: Vec<Vec<String>> = z.iter().enumerate().take(CHART_TABLE_ROWS).map(|(r, row)| {
                std::iter::once(y.get(r).map(cell).unwrap_or_else(|| r.to_string())).chain(list(row).iter().map(cell)).collect()
            }).collect();
            return Some(ChartTable { caption: caption(&name, rows.len(), z.len()), header, rows });
        }
        let n = x.len().max(y.len());
        if n == 0 {
            return None;
        }
        let err = list(&t["error_y"]["array"]);
        let mut header = vec![x_title.clone(), y_title.clone()];
        if !err.is_empty() {
            header.push("± error".into());
        }
        let rows: Vec<Vec<String>> = (0..n.min(CHART_TABLE_ROWS)).map(|k| {
            let mut r = vec![x.get(k).map(cell).unwrap_or_else(|| (k + 1).to_string()), y.get(k).map(cell).unwrap_or_default()];
            if !err.is_empty() {
                r.push(err.get(k).map(cell).unwrap_or_default());
            }
            r
        }).collect();
        Some(ChartTable { caption: caption(&name, rows.len(), n), header, rows })
    }).collect()
}

fn caption(name: &str, shown: usize, total: usize) -> String {
    if shown < total { format!("{name} (first {shown} of {total})") } else { name.to_string() }
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

/// Above a view computed from an external run's row sample: how many rows, of how many, how
/// drawn (nothing for an uploaded run's rows).
#[component]
pub fn SampleNote(sample: Option<crate::model::RowSample>) -> impl IntoView {
    sample.map(|s| view! { <p class="muted sample-note" data-testid="row-sample">{s.sentence()}</p> })
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
    fn a_row_sample_says_how_many_rows_of_how_many() {
        use crate::model::RowSample;
        let s = RowSample { rows: 100_000, of: 5_000_000, seed: 1, method: "drawn by Spark: TABLESAMPLE (2 PERCENT) REPEATABLE (1)".into() };
        assert_eq!(
            s.sentence(),
            "Computed on a uniform sample of 100,000 of the run's 5,000,000 rows (2%, seed 1; drawn by Spark: TABLESAMPLE (2 PERCENT) REPEATABLE (1)): an external run's rows stay where they are."
        );
        let small = RowSample { rows: 99_871, of: 123_456_789, seed: 1, method: "m".into() };
        assert!(small.sentence().contains("99,871 of the run's 123,456,789 rows (0.08%"), "{}", small.sentence());
        let all = RowSample { rows: 16_000, of: 16_000, seed: 1, method: "read from its Parquet files".into() };
        assert_eq!(all.sentence(), "Computed on all 16,000 rows of this external run (read from its Parquet files).");
    }

    #[test]
    fn epoch_micros_format_as_utc_dates() {
        assert_eq!(fmt_epoch_micros(0.0), "1970-01-01 00:00");
        assert_eq!(fmt_epoch_micros(1_704_067_821_000_000.0), "2024-01-01 00:10");
        assert_eq!(fmt_epoch_micros(1_709_164_800_000_000.0), "2024-02-29 00:00");
    }

    #[test]
    fn chart_tables_list_each_series_with_errors_and_caps() {
        let fig = r#"{"data":[{"name":"AUC","x":["a","b"],"y":[0.5,0.25],"error_y":{"array":[0.1,0.2]}},
            {"x":[1,2,3],"y":[4,5,6]},{"z":[[1,2],[3,4]],"x":["p","q"],"y":["r","s"]}],
            "layout":{"xaxis":{"title":{"text":"group"}},"yaxis":{"title":"value"}}}"#;
        let t = chart_tables(fig);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].header, ["group", "value", "± error"]);
        assert_eq!(t[0].rows[1], ["b", "0.2500", "0.2000"]);
        assert_eq!(t[1].caption, "series 2");
        assert_eq!(t[2].rows[1], ["s", "3", "4"]);
        let many = format!(r#"{{"data":[{{"x":{:?}}}]}}"#, (0..500).collect::<Vec<_>>());
        assert_eq!(chart_tables(&many)[0].caption, "series 1 (first 200 of 500)");
        assert!(chart_tables("not json").is_empty());
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
