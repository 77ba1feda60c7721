//! Accounts, tokens, share links and reviews: the use cases behind the team routes and pages.
//! Who may call each is decided before (the route table); what is checked here is the input.

use strata_app::model::{
    Caller, CreatedShare, CreatedToken, NewReview, NewShare, NewToken, NewUser, Review, ReviewState, ReviewVerdict, UserInfo, UserPatch, UserRole,
};

use super::{AppState, ServiceError};
use crate::auth::{new_secret, password};
use crate::store::projects::stamp;

/// An account name: 1–64 characters of letters, digits and `. _ @ -` (it appears in URLs,
/// the audit log and the CLI).
pub fn check_name(name: &str) -> Result<(), ServiceError> {
    let ok = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'));
    if ok { Ok(()) } else { Err(ServiceError::BadRequest(format!("'{name}' is not a valid account name: 1–64 letters, digits, '.', '_', '@' or '-'"))) }
}

fn approvals_key(project: &str) -> String {
    format!("approvals:{project}")
}

impl AppState {
    /// Creates an account (a person with a password, or a service account without one).
    pub async fn create_user(&self, u: NewUser) -> Result<UserInfo, ServiceError> {
        check_name(&u.name)?;
        let hash = match (&u.password, u.service) {
            (Some(_), true) => return Err(ServiceError::BadRequest("a service account has no password: give it tokens".into())),
            (None, false) => return Err(ServiceError::BadRequest("a person's account needs a password".into())),
            (None, true) => None,
            (Some(pw), false) => {
                password::check_new(pw).map_err(ServiceError::BadRequest)?;
                let pw = pw.clone();
                Some(self.quick.run(move || password::hash(&pw)).await?)
            }
        };
        let kind = if u.service { "service" } else { "local" };
        if !self.store.create_user(&u.name, u.role, kind, hash.as_deref(), None).await? {
            return Err(ServiceError::Conflict(format!("an account named '{}' exists", u.name)));
        }
        self.auth.team_on();
        self.user(&u.name).await
    }

    pub async fn user(&self, name: &str) -> Result<UserInfo, ServiceError> {
        self.store.list_users().await?.into_iter().find(|u| u.name == name).ok_or_else(|| ServiceError::Missing(format!("no account named '{name}'")))
    }

    /// Changes an account's role, password or disabled flag. Disabling (or a new password)
    /// signs it out everywhere.
    pub async fn update_user(&self, name: &str, patch: UserPatch) -> Result<UserInfo, ServiceError> {
        let account = self.store.account_by_name(name).await?.ok_or_else(|| ServiceError::Missing(format!("no account named '{name}'")))?;
        let hash = match &patch.password {
            Some(pw) => {
                if account.kind != "local" {
                    return Err(ServiceError::BadRequest(format!("'{name}' signs in with {}: it has no password", account.kind)));
                }
                password::check_new(pw).map_err(ServiceError::BadRequest)?;
                let pw = pw.clone();
                Some(self.quick.run(move || password::hash(&pw)).await?)
            }
            None => None,
        };
        // The last enabled admin cannot be demoted or disabled (nobody could administer).
        let demotes = patch.role.is_some_and(|r| r != UserRole::Admin) || patch.disabled == Some(true);
        if account.role == UserRole::Admin && demotes {
            let admins = self.store.list_users().await?.iter().filter(|u| u.role == UserRole::Admin && !u.disabled).count();
            if admins <= 1 {
                return Err(ServiceError::BadRequest(format!("'{name}' is the last admin: make another admin first")));
            }
        }
        self.store.update_user(name, patch.role, patch.disabled, hash.as_deref()).await?;
        if patch.disabled == Some(true) || hash.is_some() {
            self.store.delete_sessions_of(&account.id).await?;
        }
        self.user(name).await
    }

    /// A new API token for an account; its secret is in the answer only.
    pub async fn create_token(&self, user_id: &str, user_name: &str, t: NewToken) -> Result<CreatedToken, ServiceError> {
        let name = t.name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(ServiceError::BadRequest("a token needs a name of 1–100 characters (what it is for)".into()));
        }
        if t.scopes.is_empty() {
            return Err(ServiceError::BadRequest("a token needs at least one scope: read, write, validate or admin".into()));
        }
        let days = t.expires_in_days.unwrap_or(90);
        if !(1..=3650).contains(&days) {
            return Err(ServiceError::BadRequest("expires_in_days must be 1–3650".into()));
        }
        let expires = stamp(chrono::Utc::now() + chrono::Duration::days(days as i64));
        let (secret, hash) = new_secret("strata_");
        let mut scopes = t.scopes.clone();
        scopes.sort();
        scopes.dedup();
        let id = self.store.create_token(&hash, user_id, name, &scopes, Some(&expires)).await?;
        let info = self.store.list_tokens(Some(user_id)).await?.into_iter().find(|i| i.id == id).ok_or_else(|| ServiceError::Missing("the new token".into()))?;
        debug_assert_eq!(info.user, user_name);
        Ok(CreatedToken { token: secret, info })
    }

    /// A reviewer link to a view of a run (`run`) or of a project (`project`).
    pub async fn create_share(&self, creator: &str, run: Option<&str>, project: Option<&str>, s: NewShare) -> Result<CreatedShare, ServiceError> {
        let enc = |x: &str| form_urlencoded::byte_serialize(x.as_bytes()).collect::<String>().replace('+', "%20");
        let home = match (run, project) {
            (Some(id), _) => {
                self.store.run_project(id).await?.ok_or_else(|| ServiceError::NotFound(id.to_string()))?;
                format!("/runs/{}", enc(id))
            }
            (None, Some(p)) => format!("/projects/{}", enc(p)),
            (None, None) => return Err(ServiceError::BadRequest("a share link is for a run or a project".into())),
        };
        let view = s.view.as_deref().map(str::trim).filter(|v| !v.is_empty()).unwrap_or(&home).to_string();
        // The view must be the run's (project's) own page or one under it: the link opens
        // nothing else, and it is a path on this site (no scheme, no host).
        let path = view.split(['?', '#']).next().unwrap_or("");
        let inside = path == home || path.starts_with(&format!("{home}/"));
        if !inside || view.len() > 4000 || view.chars().any(char::is_control) {
            return Err(ServiceError::BadRequest(format!("the view to share must be a page under {home}")));
        }
        let days = s.expires_in_days.unwrap_or(14);
        if !(1..=365).contains(&days) {
            return Err(ServiceError::BadRequest("expires_in_days must be 1–365".into()));
        }
        let hash = match s.password.as_deref().filter(|p| !p.is_empty()) {
            Some(pw) => {
                password::check_new(pw).map_err(ServiceError::BadRequest)?;
                let pw = pw.to_string();
                Some(self.quick.run(move || password::hash(&pw)).await?)
            }
            None => None,
        };
        let (secret, token_hash) = new_secret("");
        let expires = stamp(chrono::Utc::now() + chrono::Duration::days(days as i64));
        let info = self.store.create_share(&token_hash, run, if run.is_some() { None } else { project }, &view, creator, &expires, hash.as_deref(), s.require_sign_in).await?;
        Ok(CreatedShare { path: format!("/s/{secret}"), info })
    }

    /// Approvals a project requires before a run counts as blessed (0: none).
    pub async fn required_approvals(&self, project: &str) -> Result<u32, ServiceError> {
        Ok(self.store.get_app_setting(&approvals_key(project)).await?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    pub async fn set_required_approvals(&self, project: &str, n: u32) -> Result<u32, ServiceError> {
        if n > 20 {
            return Err(ServiceError::BadRequest("at most 20 approvals can be required".into()));
        }
        self.store.put_app_setting(&approvals_key(project), Some(&n.to_string())).await?;
        Ok(n)
    }

    /// A run's reviews and whether it is blessed: each reviewer's latest verdict counts; a run is
    /// blessed when the approvals reach the project's requirement, nobody's latest verdict asks
    /// for changes, and its newest validation passed (a run outside projects has no gates: its
    /// approvals alone decide, and it needs at least one).
    pub async fn review_state(&self, id: &str) -> Result<ReviewState, ServiceError> {
        let project = self.store.run_project(id).await?.ok_or_else(|| ServiceError::NotFound(id.to_string()))?;
        let reviews = self.store.reviews(id).await?;
        let mut latest: Vec<(String, ReviewVerdict)> = Vec::new();
        for r in reviews.iter().filter(|r| r.verdict != ReviewVerdict::Comment) {
            match latest.iter_mut().find(|(a, _)| *a == r.author) {
                Some(slot) => slot.1 = r.verdict,
                None => latest.push((r.author.clone(), r.verdict)),
            }
        }
        let by = |v: ReviewVerdict| latest.iter().filter(|(_, x)| *x == v).map(|(a, _)| a.clone()).collect::<Vec<_>>();
        let (approved_by, changes_requested_by) = (by(ReviewVerdict::Approve), by(ReviewVerdict::RequestChanges));
        let required = match &project {
            Some(p) => self.required_approvals(p).await?,
            None => 0,
        };
        let gates_passed = match &project {
            Some(_) => self.store.latest_validation(id).await?.map(|v| v.passed),
            None => None,
        };
        let enough = approved_by.len() as u32 >= required.max(1);
        let gates_ok = project.is_none() || gates_passed == Some(true);
        let blessed = enough && changes_requested_by.is_empty() && gates_ok;
        Ok(ReviewState { run_id: id.to_string(), project, required_approvals: required, approved_by, changes_requested_by, gates_passed, blessed, reviews })
    }

    /// Records a review of a run by `author`, anchored to a view of it.
    pub async fn add_review(&self, id: &str, author: &str, r: NewReview) -> Result<Review, ServiceError> {
        let home = format!("/runs/{}", form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>().replace('+', "%20"));
        let view = r.view.as_deref().map(str::trim).filter(|v| !v.is_empty()).unwrap_or(&home).to_string();
        let path = view.split(['?', '#']).next().unwrap_or("");
        if !(path == home || path.starts_with(&format!("{home}/"))) || view.len() > 4000 || view.chars().any(char::is_control) {
            return Err(ServiceError::BadRequest(format!("a review's view must be a page under {home}")));
        }
        let comment = r.comment.trim();
        if comment.chars().count() > 10_000 {
            return Err(ServiceError::BadRequest("a comment may have at most 10,000 characters".into()));
        }
        if comment.is_empty() && r.verdict == ReviewVerdict::Comment {
            return Err(ServiceError::BadRequest("a comment needs some text".into()));
        }
        self.store.run_project(id).await?.ok_or_else(|| ServiceError::NotFound(id.to_string()))?;
        let preview = self.view_preview(id, &view).await;
        Ok(self.store.add_review(id, author, r.verdict, comment, &view, preview.as_deref()).await?)
    }

    /// What a view showed, in one line, for a review's anchor: the fairness view's first
    /// criterion (metric, groups, value, verdict); `None` for other views or when it fails.
    async fn view_preview(&self, id: &str, view: &str) -> Option<String> {
        let (path, query) = view.split_once('?').unwrap_or((view, ""));
        if !path.ends_with("/fairness") {
            return None;
        }
        let v = self.fairness_view(&[id.to_string()], query).await.ok()?;
        let card = v.cards.first()?;
        let check = card.checks.first()?;
        let value = check.value.map(|x| format!("{x:.4}")).unwrap_or_else(|| "–".into());
        Some(format!("{} · {} @ {} = {} ({} vs {}) · {}", v.feature, check.name, card.threshold, value, check.lowest, check.highest, check.verdict))
    }

    /// The account name a request acts as, for records (reviews, links).
    pub fn author(caller: &Caller) -> String {
        crate::auth::actor(caller)
    }
}
