//! The one table of what every route needs: method × path → permission on a resource, the token
//! scope it takes, and the audit-log action it records. The gate (`super::gate`) refuses a route
//! that is not in this table, and the authorization-matrix test walks every route the server
//! has (API, pages, server functions, sign-in and share routes) against it.

use strata_app::model::{Perm, Scope};

/// Where a resource's name is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Src {
    /// A `{name}` segment of the path.
    Path(&'static str),
    /// A URL query parameter (comma-separated when it holds several).
    Query(&'static str),
    /// A field of a server function's form body (`ids[0]`, `ids[1]`… count as `ids`).
    Form(&'static str),
    /// A parameter inside a query string carried in a server function's form field.
    FormQuery(&'static str, &'static str),
}

/// The resource a rule's permission is checked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The instance as a whole.
    Instance,
    /// The instance or any project the caller holds a grant on (e.g. upload: the project
    /// named in the upload is checked by the handler, which reads it).
    Anywhere,
    /// One run (its project's grant applies).
    Run(Src),
    /// Every run named by these sources (a comparison): the caller needs the permission on each.
    Runs(&'static [Src]),
    Project(Src),
    /// A share link by id: the run or project it opens.
    Share(Src),
}

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Need {
    pub perm: Perm,
    pub on: Target,
    /// The scope an API token needs for it.
    pub scope: Scope,
    /// Only an account (a signed-in person or a token), never a share link.
    pub account: bool,
}

/// A route's rule: `need: None` is public.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub method: &'static str,
    /// The route's pattern: `{x}` is one segment, `{*x}` the rest of the path.
    pub path: &'static str,
    pub need: Option<Need>,
    /// The action the audit log records when the request succeeds.
    pub audit: Option<&'static str>,
}

const fn need(perm: Perm, on: Target) -> Option<Need> {
    let scope = match perm {
        Perm::Read => Scope::Read,
        Perm::Edit | Perm::Manage => Scope::Write,
        Perm::Admin => Scope::Admin,
    };
    Some(Need { perm, on, scope, account: false })
}
const fn account(perm: Perm, on: Target, scope: Scope) -> Option<Need> {
    Some(Need { perm, on, scope, account: true })
}

const RUN: Target = Target::Run(Src::Path("id"));
const PROJECT: Target = Target::Project(Src::Path("p"));
const FORM_RUN: Target = Target::Run(Src::Form("id"));
const COMPARE: Target = Target::Runs(&[Src::Query("runs")]);
const FORM_COMPARE: Target = Target::Runs(&[Src::Form("ids"), Src::FormQuery("query", "runs")]);

use Perm::{Admin, Edit, Manage, Read};
use Target::{Anywhere, Instance};

macro_rules! rules {
    ($( $method:literal $path:literal => $need:expr $(, audit $audit:literal)? ;)*) => {
        &[$( Rule { method: $method, path: $path, need: $need, audit: rules!(@a $($audit)?) } ),*]
    };
    (@a) => { None };
    (@a $a:literal) => { Some($a) };
}

/// Every route of the server.
pub static RULES: &[Rule] = rules! {
    // Public: health, the API description, assets, sign-in, opening a share link.
    "GET" "/healthz" => None;
    "GET" "/api/v1/openapi.json" => None;
    "GET" "/api/v1/metric-registry" => None;
    "GET" "/pkg/{*file}" => None;
    "GET" "/vendor/{*file}" => None;
    "GET" "/charts.js" => None;
    "GET" "/favicon.svg" => None;
    "GET" "/login" => None;
    "POST" "/auth/login" => None;
    "POST" "/auth/logout" => None;
    "GET" "/s/{token}" => None;
    "POST" "/s/{token}" => None;
    "GET" "/api/v1/me" => None;
    "GET" "/auth/oidc/login" => None;
    "GET" "/auth/oidc/callback" => None;
    "POST" "/api/sign_in_options" => None;
    "POST" "/api/who_am_i" => None;

    // Pages.
    "GET" "/" => need(Read, Instance);
    "GET" "/upload" => need(Edit, Anywhere);
    "GET" "/runs/{id}" => need(Read, RUN);
    "GET" "/runs/{id}/slices" => need(Read, RUN);
    "GET" "/runs/{id}/residuals" => need(Read, RUN);
    "GET" "/runs/{id}/discover" => need(Read, RUN);
    "GET" "/runs/{id}/fairness" => need(Read, RUN);
    "GET" "/runs/{id}/whatif" => need(Read, RUN);
    "GET" "/runs/{id}/drift" => need(Read, RUN);
    "GET" "/compare" => need(Read, COMPARE);
    "GET" "/projects/{p}" => need(Read, PROJECT);
    "GET" "/alerts" => need(Read, Instance);
    "GET" "/admin" => need(Admin, Instance);
    "GET" "/account" => account(Read, Instance, Scope::Read);
    "GET" "/runs/{id}/fairness/export" => need(Read, RUN);
    "GET" "/compare/export" => need(Read, COMPARE);

    // Runs.
    "GET" "/api/v1/runs" => need(Read, Instance);
    "POST" "/api/v1/runs" => need(Edit, Anywhere), audit "run.upload";
    "POST" "/api/v1/preview" => need(Edit, Anywhere);
    "GET" "/api/v1/runs/{id}" => need(Read, RUN);
    "DELETE" "/api/v1/runs/{id}" => need(Manage, RUN), audit "run.delete";
    "PATCH" "/api/v1/runs/{id}" => need(Edit, RUN), audit "run.move";
    "GET" "/api/v1/runs/{id}/examples" => need(Read, RUN);
    // A model file leaves the server: accounts only, not share links.
    "GET" "/api/v1/runs/{id}/attachments/{name}" => account(Read, RUN, Scope::Read);

    // Analyses (a share link may open its own run's).
    "GET" "/api/v1/runs/{id}/metrics" => need(Read, RUN);
    "GET" "/api/v1/runs/{id}/fairness" => need(Read, RUN);
    "GET" "/api/v1/compare" => need(Read, COMPARE);
    "PUT" "/api/v1/runs/{id}/fairness/limits" => need(Edit, RUN), audit "run.limits";
    "GET" "/api/v1/runs/{id}/residuals" => need(Read, RUN);
    "GET" "/api/v1/runs/{id}/discover" => need(Read, RUN);
    "GET" "/api/v1/runs/{id}/drift" => need(Read, RUN);
    "GET" "/api/v1/runs/{id}/stream-drift" => need(Read, RUN);
    "GET" "/api/v1/runs/{id}/validation" => need(Read, RUN);

    // Models of a run: calling them is reading; configuring where they are served is managing.
    "POST" "/api/v1/runs/{id}/predict" => need(Read, RUN);
    "GET" "/api/v1/runs/{id}/pdp" => need(Read, RUN);
    "GET" "/api/v1/runs/{id}/counterfactual" => need(Read, RUN);
    "POST" "/api/v1/runs/{id}/attacks" => need(Read, RUN);
    "POST" "/api/v1/runs/{id}/adversarial" => need(Read, RUN);
    "GET" "/api/v1/runs/{id}/attributions" => need(Read, RUN);
    "GET" "/api/v1/runs/{id}/importance" => need(Read, RUN);
    "GET" "/api/v1/runs/{id}/whatif-examples" => need(Read, RUN);
    "POST" "/api/v1/runs/{id}/whatif-examples" => need(Edit, RUN), audit "whatif.save";
    "DELETE" "/api/v1/runs/{id}/whatif-examples/{name}" => need(Edit, RUN), audit "whatif.delete";
    "POST" "/api/v1/runs/{id}/benchmark" => need(Edit, RUN), audit "run.benchmark";
    "POST" "/api/v1/runs/{id}/models" => need(Edit, RUN), audit "run.model";
    "GET" "/api/v1/runs/{id}/models" => need(Read, RUN);
    "GET" "/api/v1/runs/{id}/endpoints" => need(Read, RUN);
    "PUT" "/api/v1/runs/{id}/endpoints" => need(Manage, RUN), audit "run.endpoints";
    "POST" "/api/v1/runs/{id}/endpoints/{name}/test" => need(Read, RUN);

    // Projects, gates, validation, alerts.
    "GET" "/api/v1/projects" => need(Read, Instance);
    "GET" "/api/v1/projects/{p}" => need(Read, PROJECT);
    "GET" "/api/v1/projects/{p}/gates" => need(Read, PROJECT);
    "PUT" "/api/v1/projects/{p}/gates" => need(Manage, PROJECT), audit "project.gates";
    "GET" "/api/v1/projects/{p}/rules" => need(Read, PROJECT);
    "PUT" "/api/v1/projects/{p}/rules" => need(Manage, PROJECT), audit "project.rules";
    "POST" "/api/v1/runs/{id}/rules-impact" => need(Read, RUN);
    "GET" "/api/v1/projects/{p}/slices" => need(Read, PROJECT);
    "PUT" "/api/v1/projects/{p}/slices/{name}" => need(Edit, PROJECT), audit "project.slice";
    "DELETE" "/api/v1/projects/{p}/slices/{name}" => need(Edit, PROJECT), audit "project.slice";
    "POST" "/api/v1/projects/{p}/runs/{id}/validate" => Some(Need { perm: Edit, on: PROJECT, scope: Scope::Validate, account: false }), audit "run.validate";
    "GET" "/api/v1/projects/{p}/approvals" => need(Read, PROJECT);
    "PUT" "/api/v1/projects/{p}/approvals" => need(Manage, PROJECT), audit "project.approvals";
    "PUT" "/api/v1/projects/{p}/grants/{user}" => need(Manage, PROJECT), audit "project.grant";
    "GET" "/api/v1/alerts" => need(Read, Instance);
    "GET" "/api/v1/alerts/webhook" => need(Admin, Instance);
    "PUT" "/api/v1/alerts/webhook" => need(Admin, Instance), audit "webhook.set";

    // Reviews and share links.
    "GET" "/api/v1/runs/{id}/reviews" => need(Read, RUN);
    "POST" "/api/v1/runs/{id}/reviews" => account(Read, RUN, Scope::Write), audit "run.review";
    "GET" "/api/v1/runs/{id}/shares" => need(Edit, RUN);
    "POST" "/api/v1/runs/{id}/shares" => need(Edit, RUN), audit "share.create";
    "POST" "/api/v1/projects/{p}/shares" => need(Edit, PROJECT), audit "share.create";
    "GET" "/api/v1/shares" => account(Read, Instance, Scope::Read);
    "DELETE" "/api/v1/shares/{sid}" => need(Edit, Target::Share(Src::Path("sid"))), audit "share.revoke";

    // Accounts and tokens.
    "POST" "/api/v1/me/sign-out-everywhere" => account(Read, Instance, Scope::Admin), audit "session.sign_out_everywhere";
    "GET" "/api/v1/tokens" => account(Read, Instance, Scope::Read);
    "POST" "/api/v1/tokens" => account(Read, Instance, Scope::Admin), audit "token.create";
    "DELETE" "/api/v1/tokens/{tid}" => account(Read, Instance, Scope::Admin), audit "token.delete";
    "GET" "/api/v1/users" => need(Admin, Instance);
    "POST" "/api/v1/users" => need(Admin, Instance), audit "user.create";
    "PATCH" "/api/v1/users/{name}" => need(Admin, Instance), audit "user.update";
    "POST" "/api/v1/users/{name}/tokens" => need(Admin, Instance), audit "token.create";
    "GET" "/api/v1/audit" => need(Admin, Instance);

    // Long requests' progress and cancel: only the caller that started a job sees it (checked by
    // the handler: another caller's job is not found).
    "GET" "/api/v1/jobs/{job}" => need(Read, Anywhere);
    "DELETE" "/api/v1/jobs/{job}" => need(Read, Anywhere);

    // Server functions (the pages' calls; their arguments are form fields).
    "POST" "/api/list_runs" => need(Read, Instance);
    "POST" "/api/list_projects" => need(Read, Instance);
    "POST" "/api/get_run_overview" => need(Read, FORM_RUN);
    "POST" "/api/get_examples" => need(Read, FORM_RUN);
    "POST" "/api/get_slice_view" => need(Read, FORM_RUN);
    "POST" "/api/get_residuals_view" => need(Read, FORM_RUN);
    "POST" "/api/get_discovery_view" => need(Read, FORM_RUN);
    "POST" "/api/get_fairness_view" => need(Read, FORM_COMPARE);
    "POST" "/api/get_whatif_view" => need(Read, FORM_RUN);
    "POST" "/api/get_whatif_example" => need(Read, FORM_RUN);
    "POST" "/api/get_whatif_pdp" => need(Read, FORM_RUN);
    "POST" "/api/get_drift_view" => need(Read, FORM_RUN);
    "POST" "/api/get_review_state" => need(Read, FORM_RUN);
    "POST" "/api/get_run_endpoints" => need(Read, FORM_RUN);
    "POST" "/api/test_run_endpoint" => need(Read, FORM_RUN);
    "POST" "/api/get_model_cards" => need(Read, FORM_RUN);
    "POST" "/api/save_fairness_limits" => need(Edit, FORM_RUN), audit "run.limits";
    "POST" "/api/train_benchmark" => need(Edit, FORM_RUN), audit "run.benchmark";
    "POST" "/api/save_what_if" => need(Edit, FORM_RUN), audit "whatif.save";
    "POST" "/api/delete_what_if" => need(Edit, FORM_RUN), audit "whatif.delete";
    "POST" "/api/add_review" => account(Read, FORM_RUN, Scope::Write), audit "run.review";
    "POST" "/api/create_share" => need(Edit, FORM_RUN), audit "share.create";
    "POST" "/api/get_run_shares" => need(Edit, FORM_RUN);
    "POST" "/api/create_project_share" => need(Edit, Target::Project(Src::Form("project"))), audit "share.create";
    "POST" "/api/revoke_share" => need(Edit, Target::Share(Src::Form("sid"))), audit "share.revoke";
    "POST" "/api/get_project_view" => need(Read, Target::Project(Src::Form("project")));
    "POST" "/api/validate_run" => Some(Need { perm: Edit, on: Target::Project(Src::Form("project")), scope: Scope::Validate, account: false }), audit "run.validate";
    "POST" "/api/preview_rules" => need(Read, Target::Project(Src::Form("project")));
    "POST" "/api/save_rules" => need(Manage, Target::Project(Src::Form("project"))), audit "project.rules";
    "POST" "/api/save_gates" => need(Manage, Target::Project(Src::Form("project"))), audit "project.gates";
    "POST" "/api/get_named_slices" => need(Read, Target::Project(Src::Form("project")));
    "POST" "/api/save_named_slice" => need(Edit, Target::Project(Src::Form("project"))), audit "project.slice";
    "POST" "/api/get_alerts_view" => need(Read, Instance);
    "POST" "/api/set_webhook" => need(Admin, Instance), audit "webhook.set";
    "POST" "/api/get_admin_view" => need(Admin, Instance);
    "POST" "/api/get_account_view" => account(Read, Instance, Scope::Read);
    "POST" "/api/create_personal_token" => account(Read, Instance, Scope::Admin), audit "token.create";
    "POST" "/api/delete_personal_token" => account(Read, Instance, Scope::Admin), audit "token.delete";
    "POST" "/api/sign_out_everywhere" => account(Read, Instance, Scope::Admin), audit "session.sign_out_everywhere";
    "POST" "/api/add_user" => need(Admin, Instance), audit "user.create";
    "POST" "/api/set_user" => need(Admin, Instance), audit "user.update";
};

/// A matched rule and the path parameters it captured.
pub struct Matched {
    pub rule: &'static Rule,
    pub params: Vec<(&'static str, String)>,
}

/// The rule for a request, with its path parameters (percent-decoded); `None` when no rule
/// covers it (the gate then refuses it). A literal segment wins over a `{param}`.
pub fn find(method: &str, path: &str) -> Option<Matched> {
    let method = if method == "HEAD" { "GET" } else { method };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut best: Option<(usize, Matched)> = None;
    for rule in RULES.iter().filter(|r| r.method == method) {
        if let Some((literals, params)) = matches(rule.path, &segments)
            && best.as_ref().is_none_or(|(l, _)| literals > *l)
        {
            best = Some((literals, Matched { rule, params }));
        }
    }
    best.map(|(_, m)| m)
}

/// Whether `pattern` matches the path's segments: the number of literal segments and the params.
fn matches(pattern: &'static str, segments: &[&str]) -> Option<(usize, Vec<(&'static str, String)>)> {
    let pattern: Vec<&'static str> = pattern.trim_start_matches('/').split('/').collect();
    let mut params = Vec::new();
    let mut literals = 0;
    for (i, p) in pattern.iter().enumerate() {
        if let Some(name) = p.strip_prefix("{*").and_then(|p| p.strip_suffix('}')) {
            let rest = segments.get(i..).filter(|r| !r.is_empty() && !r[0].is_empty())?;
            params.push((name, rest.join("/")));
            return Some((literals, params));
        }
        let seg = segments.get(i)?;
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if seg.is_empty() {
                return None;
            }
            let value = percent_decode(seg)?;
            params.push((name, value));
        } else if p != seg {
            return None;
        } else {
            literals += 1;
        }
    }
    (pattern.len() == segments.len()).then_some((literals, params))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes: Vec<u8> = form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes()).next().map(|(_, v)| v.into_owned().into_bytes())?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_win_over_params() {
        let m = find("GET", "/runs/abc/fairness/export").unwrap();
        assert_eq!(m.rule.path, "/runs/{id}/fairness/export");
        assert_eq!(m.params, vec![("id", "abc".to_string())]);
        let m = find("GET", "/api/v1/runs/r%2F1").unwrap();
        assert_eq!(m.params, vec![("id", "r/1".to_string())]);
        assert_eq!(find("GET", "/pkg/strata.wasm").unwrap().rule.path, "/pkg/{*file}");
        assert!(find("GET", "/pkg/").is_none());
        assert!(find("GET", "/nowhere").is_none());
        assert!(find("PUT", "/api/v1/runs").is_none());
        assert_eq!(find("HEAD", "/healthz").unwrap().rule.path, "/healthz");
    }

    #[test]
    fn every_rule_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in RULES {
            assert!(seen.insert((r.method, r.path)), "{} {} is in the table twice", r.method, r.path);
        }
    }
}
