//! Plotly figures (as JSON) built from the engine's plain results.

use plotly::common::Title;
use plotly::layout::{Axis, BarMode, Layout, Legend};
use plotly::common::ErrorData;
use plotly::common::ErrorType;
use plotly::{Bar, Plot};
use strata_app::model::{Autocorrelation, FairnessEntry, FeatureResiduals, MetricsResult, ResidualsResult, SliceBias};
use strata_app::model::Task;

use crate::eval::Distribution;

/// Overlaid histograms of one model's scores per label class (or predictions next to labels).
pub fn distribution_figure(d: &Distribution, task: Task, model: &str) -> String {
    let mut plot = Plot::new();
    if !d.classes.is_empty() {
        // Multiclass: predicted and true class counts side by side.
        for (name, counts) in &d.series {
            plot.add_trace(Bar::new(d.classes.clone(), counts.clone()).name(name.as_str()));
        }
        plot.set_layout(
            Layout::new()
                .bar_mode(BarMode::Group)
                .x_axis(Axis::new().title(Title::with_text(format!("class ({model}: predicted; label: true)"))).type_(plotly::layout::AxisType::Category))
                .y_axis(Axis::new().title(Title::with_text("examples (weighted)")))
                .legend(Legend::new())
                .height(360)
                .margin(plotly::layout::Margin::new().top(20).bottom(50).left(60).right(20)),
        );
        return plot.to_json();
    }
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

fn margin() -> serde_json::Value {
    serde_json::json!({"t": 20, "b": 50, "l": 60, "r": 20})
}

/// Residuals against a numeric variable: the sampled points behind the binned mean with its
/// interval as a band; the axis title says how many points were sampled.
pub fn residual_scatter(f: &FeatureResiduals, x_title: &str, sampled: u64) -> String {
    let xs: Vec<f64> = f.bins.iter().map(|b| b.x_mean).collect();
    let mean: Vec<f64> = f.bins.iter().map(|b| b.mean).collect();
    let lo: Vec<Option<f64>> = f.bins.iter().map(|b| b.lo).collect();
    let hi: Vec<Option<f64>> = f.bins.iter().map(|b| b.hi).collect();
    serde_json::json!({
        "data": [
            {"type": "scattergl", "mode": "markers", "name": format!("sample of {sampled} rows"), "x": f.sample_x, "y": f.sample_y,
             "marker": {"size": 3, "opacity": 0.35, "color": "#7a8aa0"}},
            {"type": "scatter", "mode": "lines", "name": "CI", "x": xs, "y": hi, "line": {"width": 0}, "showlegend": false, "hoverinfo": "skip"},
            {"type": "scatter", "mode": "lines", "name": "binned mean ± CI (all rows)", "x": xs, "y": lo, "fill": "tonexty",
             "fillcolor": "rgba(214,39,40,0.18)", "line": {"width": 0}, "hoverinfo": "skip"},
            {"type": "scatter", "mode": "lines+markers", "name": "mean residual per bin (all rows)", "x": xs, "y": mean, "line": {"color": "#d62728"}},
        ],
        "layout": {
            "height": 360, "margin": margin(),
            "xaxis": {"title": {"text": x_title}},
            "yaxis": {"title": {"text": "residual"}, "zeroline": true},
            "legend": {"orientation": "h", "y": -0.2},
            "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 0, "y1": 0, "line": {"dash": "dot", "color": "#555"}}],
        }
    })
    .to_string()
}

/// Residuals per category value as box plots from precomputed quartiles (no rows shipped).
pub fn residual_boxes(f: &FeatureResiduals) -> String {
    let b = &f.boxes;
    serde_json::json!({
        "data": [{
            "type": "box", "name": f.feature,
            "x": b.iter().map(|x| x.value.clone()).collect::<Vec<_>>(),
            "q1": b.iter().map(|x| x.q1).collect::<Vec<_>>(),
            "median": b.iter().map(|x| x.median).collect::<Vec<_>>(),
            "q3": b.iter().map(|x| x.q3).collect::<Vec<_>>(),
            "lowerfence": b.iter().map(|x| x.lower_fence).collect::<Vec<_>>(),
            "upperfence": b.iter().map(|x| x.upper_fence).collect::<Vec<_>>(),
            "mean": b.iter().map(|x| x.mean).collect::<Vec<_>>(),
            "boxmean": true,
        }],
        "layout": {"height": 360, "margin": {"t": 20, "b": 100, "l": 60, "r": 20},
            "xaxis": {"title": {"text": f.feature}}, "yaxis": {"title": {"text": "residual"}}}
    })
    .to_string()
}

/// Histogram of every residual (middle 99.8% range; the tails fall in the end bins).
pub fn residual_histogram(r: &ResidualsResult) -> String {
    let centres: Vec<f64> = r.hist_edges.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    let width = r.hist_edges.get(1).zip(r.hist_edges.first()).map(|(b, a)| b - a).unwrap_or(1.0);
    serde_json::json!({
        "data": [{"type": "bar", "x": centres, "y": r.hist_counts, "width": width, "name": "residuals", "marker": {"color": "#4c78a8"}}],
        "layout": {"height": 320, "margin": margin(), "bargap": 0,
            "xaxis": {"title": {"text": format!("{} residual (all {} rows; outermost 0.1% in the end bins)", r.kind, r.n)}},
            "yaxis": {"title": {"text": "rows"}}}
    })
    .to_string()
}

/// Normal Q–Q plot with its least-squares line.
pub fn residual_qq(r: &ResidualsResult) -> String {
    let (x0, x1) = (r.qq_theoretical.first().copied().unwrap_or(-3.0), r.qq_theoretical.last().copied().unwrap_or(3.0));
    serde_json::json!({
        "data": [
            {"type": "scatter", "mode": "markers", "name": "ordered residuals", "x": r.qq_theoretical, "y": r.qq_ordered, "marker": {"size": 4}},
            {"type": "scatter", "mode": "lines", "name": format!("fit (r = {:.4})", r.qq_r), "x": [x0, x1],
             "y": [r.qq_intercept + r.qq_slope * x0, r.qq_intercept + r.qq_slope * x1], "line": {"color": "#d62728"}},
        ],
        "layout": {"height": 320, "margin": margin(), "xaxis": {"title": {"text": "theoretical normal quantile"}},
            "yaxis": {"title": {"text": "ordered residual"}}, "legend": {"orientation": "h", "y": -0.25}}
    })
    .to_string()
}

/// Autocorrelation to the requested lag with Bartlett's band around zero.
pub fn residual_acf(a: &Autocorrelation) -> String {
    let lags: Vec<usize> = (0..a.acf.len()).collect();
    // The band is centred on each value; drawn around zero it reads as "outside = significant".
    let half: Vec<f64> = a.hi.iter().zip(&a.acf).map(|(h, v)| h - v).collect();
    let neg: Vec<f64> = half.iter().map(|h| -h).collect();
    serde_json::json!({
        "data": [
            {"type": "scatter", "mode": "lines", "x": lags, "y": half, "line": {"width": 0}, "showlegend": false, "hoverinfo": "skip"},
            {"type": "scatter", "mode": "lines", "name": "95% band (Bartlett)", "x": lags, "y": neg, "fill": "tonexty",
             "fillcolor": "rgba(76,120,168,0.18)", "line": {"width": 0}},
            {"type": "bar", "name": "ACF", "x": lags, "y": a.acf, "width": 0.3, "marker": {"color": "#333"}},
        ],
        "layout": {"height": 320, "margin": margin(), "xaxis": {"title": {"text": format!("lag (rows ordered by {})", a.order_by)}},
            "yaxis": {"title": {"text": "autocorrelation"}, "range": [-1, 1]}, "legend": {"orientation": "h", "y": -0.25}}
    })
    .to_string()
}

/// Mean residual per slice with its interval; significant biases in red.
pub fn residual_slices(slices: &[SliceBias]) -> String {
    let label = |s: &SliceBias| s.key.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
    serde_json::json!({
        "data": [{
            "type": "bar",
            "x": slices.iter().map(|s| format!("{} (n={})", label(s), s.n)).collect::<Vec<_>>(),
            "y": slices.iter().map(|s| s.mean).collect::<Vec<_>>(),
            "marker": {"color": slices.iter().map(|s| if s.significant { "#d62728" } else { "#4c78a8" }).collect::<Vec<_>>()},
            "error_y": {"type": "data", "visible": true,
                "array": slices.iter().map(|s| s.hi.map(|h| h - s.mean).unwrap_or(0.0)).collect::<Vec<_>>(),
                "arrayminus": slices.iter().map(|s| s.lo.map(|l| s.mean - l).unwrap_or(0.0)).collect::<Vec<_>>()},
        }],
        "layout": {"height": 340, "margin": {"t": 20, "b": 120, "l": 60, "r": 20}, "yaxis": {"title": {"text": "mean residual (bias)"}}}
    })
    .to_string()
}

const PALETTE: [&str; 10] = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d", "#ff9da6", "#bab0ac"];

/// Threshold-free metrics of the fairness view (the rest are read at each threshold).
pub const THRESHOLD_FREE: [&str; 3] = ["auc_roc", "auc_pr", "expected_calibration_error"];

/// The baseline's value of `metric` (at `threshold`): a slice's value minus its gap to the baseline.
fn baseline_value(r: &MetricsResult, metric: &str, threshold: Option<f64>) -> Option<f64> {
    let key = match threshold {
        Some(t) => format!("{metric}@{t}"),
        None => metric.to_string(),
    };
    if r.baseline == "overall" {
        return r.slices.iter().find(|s| s.key.is_empty()).and_then(|s| s.estimate(metric, threshold)).and_then(|e| e.value);
    }
    r.slices.iter().find_map(|s| {
        let v = s.estimate(metric, threshold)?.value?;
        Some(v - s.vs_baseline.get(&key)?.diff?)
    })
}

/// Grouped bars of one metric: groups × thresholds (× models), intervals as error bars, the
/// baseline as a dashed line per threshold; hovering shows the counts behind each rate. Groups
/// smaller than `min_size` are drawn faded and marked "(small)".
pub fn fairness_bars(entries: &[FairnessEntry], feature: &str, metric: &str, min_size: u64) -> String {
    let free = THRESHOLD_FREE.contains(&metric);
    let mut data = Vec::new();
    let mut shapes = Vec::new();
    let many = entries.len() > 1;
    for (e, entry) in entries.iter().enumerate() {
        let thresholds: Vec<Option<f64>> = if free { vec![None] } else { entry.result.thresholds.iter().map(|t| Some(*t)).collect() };
        for (k, t) in thresholds.iter().enumerate() {
            let colour = PALETTE[(e * thresholds.len() + k) % PALETTE.len()];
            let groups: Vec<&strata_app::model::SliceResult> = entry.result.slices.iter().filter(|s| s.spec == feature).collect();
            let (mut x, mut y, mut plus, mut minus, mut custom, mut opacity) = (vec![], vec![], vec![], vec![], vec![], vec![]);
            for s in &groups {
                let Some(est) = s.estimate(metric, *t) else { continue };
                let Some(v) = est.value else { continue };
                let small = s.count < min_size;
                x.push(format!("{}{}", s.label(), if small { " (small)" } else { "" }));
                y.push(v);
                plus.push(est.hi.map(|h| (h - v).max(0.0)).unwrap_or(0.0));
                minus.push(est.lo.map(|l| (v - l).max(0.0)).unwrap_or(0.0));
                let at = t.and_then(|t| s.at.iter().find(|a| a.threshold == t));
                custom.push(serde_json::json!([s.count, at.map(|a| a.tp), at.map(|a| a.fp), at.map(|a| a.tn), at.map(|a| a.fn_)]));
                opacity.push(if small { 0.35 } else { 0.9 });
            }
            let name = match (many, t) {
                (true, Some(t)) => format!("{} · {} @ {t}", entry.run_name, entry.model),
                (true, None) => format!("{} · {}", entry.run_name, entry.model),
                (false, Some(t)) => format!("threshold {t}"),
                (false, None) => entry.model.clone(),
            };
            let hover = if free { "%{x}<br>%{y:.4f}<br>n=%{customdata[0]}<extra>%{fullData.name}</extra>" } else { "%{x}<br>%{y:.4f}<br>n=%{customdata[0]}: TP %{customdata[1]}, FP %{customdata[2]}, TN %{customdata[3]}, FN %{customdata[4]}<extra>%{fullData.name}</extra>" };
            data.push(serde_json::json!({
                "type": "bar", "name": name, "x": x, "y": y, "customdata": custom, "hovertemplate": hover,
                "marker": {"color": colour, "opacity": opacity},
                "error_y": {"type": "data", "array": plus, "arrayminus": minus, "visible": true, "color": "#333"},
            }));
            if let Some(b) = baseline_value(&entry.result, metric, *t) {
                shapes.push(serde_json::json!({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": b, "y1": b, "line": {"dash": "dash", "color": colour, "width": 1.5}}));
            }
        }
    }
    serde_json::json!({
        "data": data,
        "layout": {"barmode": "group", "height": 380, "margin": {"t": 20, "b": 110, "l": 60, "r": 20}, "shapes": shapes,
            "yaxis": {"title": {"text": format!("{metric} (dashed: baseline)")}}, "legend": {"orientation": "h", "y": -0.3}}
    })
    .to_string()
}

/// Per group: TPR, FPR and selection rate over the whole threshold range.
pub fn fairness_tradeoff(grid: &MetricsResult, feature: &str, min_size: u64) -> String {
    let mut data = Vec::new();
    let groups: Vec<&strata_app::model::SliceResult> = grid.slices.iter().filter(|s| s.spec == feature && s.count >= min_size.max(1)).collect();
    for (m, (metric, dash)) in [("tpr", "solid"), ("fpr", "dot"), ("positive_rate", "dash")].into_iter().enumerate() {
        for (g, s) in groups.iter().enumerate() {
            let y: Vec<Option<f64>> = s.at.iter().map(|a| a.metrics.get(metric).and_then(|e| e.value)).collect();
            data.push(serde_json::json!({
                "type": "scatter", "mode": "lines", "name": format!("{} {metric}", s.label()), "legendgroup": s.label(),
                "x": grid.thresholds, "y": y, "line": {"color": PALETTE[g % PALETTE.len()], "dash": dash}, "visible": if m == 2 { "legendonly" } else { "true" },
            }));
        }
    }
    serde_json::json!({
        "data": data,
        "layout": {"height": 380, "margin": {"t": 20, "b": 50, "l": 60, "r": 20},
            "xaxis": {"title": {"text": "threshold (solid: TPR, dotted: FPR, dashed: selection rate)"}}, "yaxis": {"title": {"text": "rate"}, "range": [0, 1]}}
    })
    .to_string()
}

/// One line per group: `metric` at `threshold` across the compared runs, in upload order.
pub fn fairness_over_time(entries: &[FairnessEntry], feature: &str, metric: &str, threshold: f64) -> String {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|a, b| entries[*a].created_at.cmp(&entries[*b].created_at));
    let mut groups: Vec<String> = Vec::new();
    for e in entries {
        for s in e.result.slices.iter().filter(|s| s.spec == feature) {
            if !groups.contains(&s.label()) {
                groups.push(s.label());
            }
        }
    }
    let t = (!THRESHOLD_FREE.contains(&metric)).then_some(threshold);
    let x: Vec<String> = order.iter().map(|i| format!("{} ({})", entries[*i].run_name, entries[*i].created_at.get(..10).unwrap_or(""))).collect();
    let data: Vec<serde_json::Value> = groups
        .iter()
        .enumerate()
        .map(|(g, label)| {
            let est: Vec<Option<&strata_app::model::Estimate>> = order.iter().map(|i| entries[*i].result.slices.iter().find(|s| s.spec == feature && s.label() == *label).and_then(|s| s.estimate(metric, t))).collect();
            let y: Vec<Option<f64>> = est.iter().map(|e| e.and_then(|e| e.value)).collect();
            let plus: Vec<f64> = est.iter().map(|e| e.and_then(|e| Some(e.hi? - e.value?)).unwrap_or(0.0)).collect();
            let minus: Vec<f64> = est.iter().map(|e| e.and_then(|e| Some(e.value? - e.lo?)).unwrap_or(0.0)).collect();
            serde_json::json!({"type": "scatter", "mode": "lines+markers", "name": label, "x": x, "y": y, "line": {"color": PALETTE[g % PALETTE.len()]},
                "error_y": {"type": "data", "array": plus, "arrayminus": minus, "visible": true}})
        })
        .collect();
    serde_json::json!({
        "data": data,
        "layout": {"height": 360, "margin": {"t": 20, "b": 90, "l": 60, "r": 20},
            "yaxis": {"title": {"text": match t { Some(t) => format!("{metric} @ {t}"), None => metric.to_string() }}}}
    })
    .to_string()
}

/// A feature against the model's score, coloured by label; clicking a point selects the example
/// (`/charts.js` follows `data-click-href` with the point's id).
pub fn whatif_scatter(x: &[f64], score: &[f64], label: &[String], ids: &[String], x_name: &str, model: &str) -> String {
    let mut classes: Vec<&String> = label.iter().collect();
    classes.sort();
    classes.dedup();
    let data: Vec<serde_json::Value> = classes
        .iter()
        .enumerate()
        .map(|(c, class)| {
            let idx: Vec<usize> = (0..label.len()).filter(|i| &label[*i] == *class).collect();
            serde_json::json!({
                "type": "scattergl", "mode": "markers", "name": class.as_str(),
                "x": idx.iter().map(|i| x[*i]).collect::<Vec<_>>(), "y": idx.iter().map(|i| score[*i]).collect::<Vec<_>>(),
                "customdata": idx.iter().map(|i| ids[*i].clone()).collect::<Vec<_>>(),
                "hovertemplate": "%{customdata}<br>%{x}, %{y:.3f}<extra>%{fullData.name}</extra>",
                "marker": {"size": 5, "opacity": 0.55, "color": PALETTE[c % PALETTE.len()]},
            })
        })
        .collect();
    serde_json::json!({
        "data": data,
        "layout": {"height": 340, "margin": {"t": 20, "b": 50, "l": 60, "r": 20}, "hovermode": "closest",
            "xaxis": {"title": {"text": x_name}}, "yaxis": {"title": {"text": model}}, "legend": {"orientation": "h", "y": -0.2}}
    })
    .to_string()
}

/// Partial dependence: the ICE curves faint behind their mean, and the selected example's curve.
pub fn pdp_figure(p: &strata_app::model::PartialDependence, threshold: Option<f64>) -> String {
    let x: Vec<serde_json::Value> = p.grid.iter().map(|g| if p.kind == "numeric" { g.parse::<f64>().map(serde_json::Value::from).unwrap_or(serde_json::Value::Null) } else { serde_json::Value::from(g.clone()) }).collect();
    let mut data: Vec<serde_json::Value> = p
        .ice
        .iter()
        .enumerate()
        .map(|(i, c)| serde_json::json!({"type": "scatter", "mode": "lines", "x": x, "y": c, "line": {"color": "rgba(76,120,168,0.18)", "width": 1},
            "showlegend": i == 0, "name": format!("ICE ({} of {} sampled rows)", p.ice.len(), p.sample), "legendgroup": "ice", "hoverinfo": "skip"}))
        .collect();
    data.push(serde_json::json!({"type": "scatter", "mode": "lines+markers", "name": "partial dependence (mean)", "x": x, "y": p.mean, "line": {"color": "#d62728", "width": 3}}));
    if let Some(e) = &p.example {
        data.push(serde_json::json!({"type": "scatter", "mode": "lines+markers", "name": "this example", "x": x, "y": e, "line": {"color": "#111", "dash": "dash"}}));
    }
    let shapes = threshold.map(|t| vec![serde_json::json!({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": t, "y1": t, "line": {"dash": "dot", "color": "#888"}})]).unwrap_or_default();
    serde_json::json!({
        "data": data,
        "layout": {"height": 360, "margin": {"t": 20, "b": 60, "l": 60, "r": 20}, "shapes": shapes,
            "xaxis": {"title": {"text": p.feature}}, "yaxis": {"title": {"text": format!("{} score", p.model)}}, "legend": {"orientation": "h", "y": -0.25}}
    })
    .to_string()
}

/// A feature's share per bin in the reference and the current run, side by side.
pub fn drift_histogram(f: &strata_app::model::FeatureDrift) -> String {
    serde_json::json!({
        "data": [
            {"type": "bar", "name": "reference", "x": f.bins, "y": f.reference_share, "marker": {"color": "#4c78a8"}},
            {"type": "bar", "name": "current", "x": f.bins, "y": f.current_share, "marker": {"color": "#f58518"}},
        ],
        "layout": {"barmode": "group", "height": 340, "margin": {"t": 20, "b": 110, "l": 60, "r": 20},
            "yaxis": {"title": {"text": format!("share of rows · {} (PSI {:.3})", f.feature, f.psi)}}, "legend": {"orientation": "h", "y": -0.35}}
    })
    .to_string()
}

/// A metric over time, one line per series (a slice, or a run's slice) with its interval as a
/// shaded band; `points` come ordered by time within each series.
/// `x_of` places a point on the x axis: its time (a date axis when `dates`), or a label such as
/// the run's version (a category axis, in the points' order).
///
/// `joined`: points of a series are joined by a line and their intervals by a band — for evenly
/// spaced points (periods, or releases at a regular pace); otherwise each point stands alone with
/// its interval as error bars, so that two releases years apart do not read as a trend.
pub fn metric_over_time(
    points: &[strata_app::model::TimePoint],
    series_of: impl Fn(&strata_app::model::TimePoint) -> String,
    x_of: impl Fn(&strata_app::model::TimePoint) -> String,
    dates: bool,
    joined: bool,
    y_title: &str,
) -> String {
    let mut names: Vec<String> = vec![];
    for p in points {
        let s = series_of(p);
        if !names.contains(&s) {
            names.push(s);
        }
    }
    let mut data = vec![];
    for (i, name) in names.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let pts: Vec<&strata_app::model::TimePoint> = points.iter().filter(|p| series_of(p) == *name && p.value.is_some()).collect();
        let x: Vec<String> = pts.iter().map(|p| x_of(p)).collect();
        let banded: Vec<&&strata_app::model::TimePoint> = pts.iter().filter(|p| p.lo.is_some() && p.hi.is_some()).collect();
        if joined && banded.len() > 1 {
            let bx: Vec<String> = banded.iter().map(|p| x_of(p)).chain(banded.iter().rev().map(|p| x_of(p))).collect();
            let by: Vec<f64> = banded.iter().filter_map(|p| p.hi).chain(banded.iter().rev().filter_map(|p| p.lo)).collect();
            data.push(serde_json::json!({"type": "scatter", "x": bx, "y": by, "fill": "toself", "fillcolor": color, "opacity": 0.18,
                "line": {"width": 0, "color": color}, "hoverinfo": "skip", "showlegend": false, "legendgroup": name}));
        }
        let text: Vec<String> = pts
            .iter()
            .map(|p| {
                let ci = match (p.lo, p.hi) {
                    (Some(l), Some(h)) => format!(" [{l:.4}, {h:.4}]"),
                    _ => String::new(),
                };
                format!("{}{} · n={} · run {}{}", p.value.map(|v| format!("{v:.4}")).unwrap_or_default(), ci, p.count, p.run_id, p.version.as_deref().map(|v| format!(" ({v})")).unwrap_or_default())
            })
            .collect();
        let y: Vec<Option<f64>> = pts.iter().map(|p| p.value).collect();
        let mut trace = serde_json::json!({"type": "scatter", "mode": if joined { "lines+markers" } else { "markers" }, "name": name, "legendgroup": name, "x": x, "y": y,
            "text": text, "hovertemplate": "%{x}<br>%{text}<extra>%{fullData.name}</extra>", "line": {"color": color}, "marker": {"size": 8, "color": color}});
        if !joined {
            let up: Vec<f64> = pts.iter().map(|p| p.hi.zip(p.value).map_or(0.0, |(h, v)| h - v)).collect();
            let down: Vec<f64> = pts.iter().map(|p| p.lo.zip(p.value).map_or(0.0, |(l, v)| v - l)).collect();
            trace["error_y"] = serde_json::json!({"type": "data", "symmetric": false, "array": up, "arrayminus": down, "color": color, "thickness": 1.5, "width": 4});
        }
        data.push(trace);
    }
    serde_json::json!({
        "data": data,
        "layout": {"height": 380, "margin": {"t": 20, "b": 60, "l": 60, "r": 20},
            "xaxis": match (dates, joined) {
                (true, true) => serde_json::json!({"type": "date", "title": {"text": "time"}}),
                (true, false) => serde_json::json!({"type": "date", "title": {"text": "time (releases as points: they are not evenly spaced, so no line joins them)"}}),
                (false, _) => serde_json::json!({"type": "category", "title": {"text": "run (in time order)"}}),
            },
            "yaxis": {"title": {"text": y_title}}, "legend": {"orientation": "h", "y": -0.2}}
    })
    .to_string()
}

/// Whether points at these times (seconds, ascending) are evenly spaced enough to be joined by a line:
/// at least three, each gap within a quarter of the median gap.
pub fn evenly_spaced(times: &[f64]) -> bool {
    if times.len() < 3 {
        return false;
    }
    let mut gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let mut sorted = gaps.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    median > 0.0 && gaps.iter_mut().all(|g| (*g - median).abs() <= 0.25 * median)
}

/// The error rate per block of a run's stream, with each detector's drift (and warning) points
/// as markers on their own rows below the line.
pub fn stream_drift(s: &strata_app::model::StreamDrift) -> String {
    let b = s.block as f64;
    let x: Vec<f64> = (0..s.error_rate.len()).map(|i| (i as f64 + 0.5) * b).collect();
    let mut data = vec![serde_json::json!({"type": "scatter", "mode": "lines", "name": format!("error rate per {} rows", s.block), "x": x, "y": s.error_rate, "line": {"color": "#4c78a8"}})];
    let rows: [(&str, &Vec<strata_app::model::StreamPoint>, &str, &str); 6] = [
        ("DDM warning", &s.ddm_warnings, "#eeca3b", "triangle-up"),
        ("DDM drift", &s.ddm_drifts, "#e45756", "x"),
        ("ADWIN drift", &s.adwin_drifts, "#f58518", "diamond"),
        ("LFR warning", &s.lfr_warnings, "#bab0ac", "triangle-up"),
        ("LFR drift", &s.lfr_drifts, "#b279a2", "x"),
        ("MD3 drift (no labels)", &s.md3_drifts, "#54a24b", "square"),
    ];
    let top = s.error_rate.iter().copied().fold(0.0_f64, f64::max).max(0.05);
    for (k, (name, points, color, symbol)) in rows.iter().enumerate() {
        let level = -top * 0.08 * (k as f64 + 1.0);
        let px: Vec<u64> = points.iter().map(|p| p.index).collect();
        let text: Vec<&str> = points.iter().map(|p| p.at.as_str()).collect();
        data.push(serde_json::json!({"type": "scatter", "mode": "markers", "name": format!("{name} ({})", points.len()), "x": px, "y": vec![level; px.len()],
            "text": text, "hovertemplate": "row %{x}<br>%{text}<extra>%{fullData.name}</extra>", "marker": {"color": color, "symbol": symbol, "size": 9}}));
    }
    serde_json::json!({
        "data": data,
        "layout": {"height": 380, "margin": {"t": 20, "b": 50, "l": 60, "r": 20},
            "xaxis": {"title": {"text": format!("examples in {} order", s.order_by)}}, "yaxis": {"title": {"text": "error rate"}, "zeroline": true},
            "legend": {"orientation": "h", "y": -0.25}}
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_joined_only_at_a_regular_pace() {
        let week = 7.0 * 86_400.0;
        assert!(evenly_spaced(&[0.0, week, 2.0 * week, 3.1 * week]));
        assert!(!evenly_spaced(&[0.0, 2.5 * 365.0 * 86_400.0]), "two releases are never a trend");
        assert!(!evenly_spaced(&[0.0, week, 30.0 * week]));
        assert!(!evenly_spaced(&[5.0, 5.0, 5.0]));
    }
}
