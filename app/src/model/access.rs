//! Who is asking and what they may do: roles, project grants, token scopes, share links; and the
//! wire types of users, tokens, share links, reviews and the audit log.
//!
//! The permission arithmetic lives here (pure, shared by the server's route table and the pages,
//! which hide what the caller cannot do); the table of which route needs what is in the server
//! (`auth::policy`).

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use utoipa::ToSchema;

/// What a caller may do to a resource, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Perm {
    /// See runs and their views, call their models (what-if).
    Read,
    /// Upload, move runs between projects, save examples and limits, validate, share.
    Edit,
    /// Delete runs, change gates, model endpoints, approvals required, grants.
    Manage,
    /// Users, webhooks, the audit log: the whole instance.
    Admin,
}

impl Perm {
    pub fn as_str(self) -> &'static str {
        match self {
            Perm::Read => "read",
            Perm::Edit => "edit",
            Perm::Manage => "manage",
            Perm::Admin => "admin",
        }
    }
}

/// An account's instance-wide role (Grafana's Viewer / Editor / Admin).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    Viewer,
    Editor,
    Admin,
}

impl UserRole {
    pub fn perm(self) -> Perm {
        match self {
            UserRole::Viewer => Perm::Read,
            UserRole::Editor => Perm::Edit,
            UserRole::Admin => Perm::Admin,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::Viewer => "viewer",
            UserRole::Editor => "editor",
            UserRole::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<UserRole> {
        match s {
            "viewer" => Some(UserRole::Viewer),
            "editor" => Some(UserRole::Editor),
            "admin" => Some(UserRole::Admin),
            _ => None,
        }
    }
}

/// A per-project grant: overrides the instance role on that project's runs (up or down, like
/// MLflow's experiment permissions and Grafana's folder permissions). An admin stays an admin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    Read,
    Edit,
    Manage,
}

impl Grant {
    pub fn perm(self) -> Perm {
        match self {
            Grant::Read => Perm::Read,
            Grant::Edit => Perm::Edit,
            Grant::Manage => Perm::Manage,
        }
    }
    pub fn as_str(self) -> &'static str {
        self.perm().as_str()
    }
    pub fn parse(s: &str) -> Option<Grant> {
        match s {
            "read" => Some(Grant::Read),
            "edit" => Some(Grant::Edit),
            "manage" => Some(Grant::Manage),
            _ => None,
        }
    }
}

/// What an API token may be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read runs, views and projects.
    Read,
    /// Everything the owner may do short of administration.
    Write,
    /// Validate runs against gates (and read): what a CI pipeline needs.
    Validate,
    /// Everything the owner may do.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Validate => "validate",
            Scope::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "validate" => Some(Scope::Validate),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// How the caller proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallerKind {
    /// Zero-setup mode (loopback, no accounts): everyone on this machine may do everything.
    Open,
    /// Team mode, nothing presented.
    Anonymous,
    /// A signed-in account (session cookie).
    User,
    /// An API token (`Authorization: Bearer`).
    Token,
    /// A reviewer's share link (read-only, one run or project).
    Share,
}

/// What a share link opens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ShareScope {
    pub link: String,
    pub run: Option<String>,
    pub project: Option<String>,
    /// The view the link was made for (path and query).
    pub view: String,
}

/// Who is asking: resolved once per request by the server, read by the pages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Caller {
    pub kind: CallerKind,
    /// The account's name (users and tokens).
    pub name: Option<String>,
    pub role: Option<UserRole>,
    /// Per-project grants of the account.
    #[serde(default)]
    pub grants: Vec<(String, Grant)>,
    /// A token's scopes.
    #[serde(default)]
    pub scopes: Vec<Scope>,
    pub share: Option<ShareScope>,
}

/// The resource a permission is asked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On<'a> {
    /// The instance as a whole (lists, uploads outside projects, administration).
    Instance,
    /// A run; `project` is the project it belongs to (if any), `id` the run.
    Run { id: &'a str, project: Option<&'a str> },
    Project(&'a str),
}

impl Caller {
    pub fn open() -> Caller {
        Caller { kind: CallerKind::Open, name: None, role: Some(UserRole::Admin), grants: vec![], scopes: vec![], share: None }
    }
    pub fn anonymous() -> Caller {
        Caller { kind: CallerKind::Anonymous, name: None, role: None, grants: vec![], scopes: vec![], share: None }
    }

    /// A person or a token (not a share link, not anonymous).
    pub fn is_account(&self) -> bool {
        matches!(self.kind, CallerKind::User | CallerKind::Token | CallerKind::Open)
    }

    /// The account's permission on `on`, before token scopes: the project's grant if there is
    /// one (an admin stays admin), else the instance role.
    pub fn account_perm(&self, on: On<'_>) -> Option<Perm> {
        let role = self.role?;
        if role == UserRole::Admin {
            return Some(Perm::Admin);
        }
        let project = match on {
            On::Instance => None,
            On::Run { project, .. } => project,
            On::Project(p) => Some(p),
        };
        project
            .and_then(|p| self.grants.iter().find(|(g, _)| g == p).map(|(_, g)| g.perm()))
            .or(Some(role.perm()))
    }

    /// Whether a token's scopes cover `need`: `read` is in every scope, `validate` in write and
    /// admin, `write` in admin.
    pub fn scope_allows(&self, need: Scope) -> bool {
        self.scopes.iter().any(|s| match need {
            Scope::Read => true,
            Scope::Validate => matches!(s, Scope::Validate | Scope::Write | Scope::Admin),
            Scope::Write => matches!(s, Scope::Write | Scope::Admin),
            Scope::Admin => *s == Scope::Admin,
        })
    }

    /// May the caller do `perm` on `on`? `scope` is the token scope the action needs (a token
    /// acts with its account's permissions, cut down to what its scopes cover).
    pub fn may(&self, perm: Perm, on: On<'_>, scope: Scope) -> bool {
        match self.kind {
            CallerKind::Open => true,
            CallerKind::Anonymous => false,
            CallerKind::Share => {
                let Some(share) = &self.share else { return false };
                perm == Perm::Read
                    && match on {
                        On::Instance => false,
                        On::Run { id, project } => share.run.as_deref() == Some(id) || (share.project.is_some() && share.project.as_deref() == project),
                        On::Project(p) => share.project.as_deref() == Some(p),
                    }
            }
            CallerKind::User => self.account_perm(on).is_some_and(|have| have >= perm),
            CallerKind::Token => self.account_perm(on).is_some_and(|have| have >= perm) && self.scope_allows(scope),
        }
    }

    /// Whether the caller may do `perm` somewhere: on the instance or on any project granted.
    pub fn may_anywhere(&self, perm: Perm, scope: Scope) -> bool {
        self.may(perm, On::Instance, scope) || self.grants.iter().any(|(p, _)| self.may(perm, On::Project(p), scope))
    }
}

/// An account as an admin sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct UserInfo {
    pub name: String,
    pub role: UserRole,
    /// `local` (password), `oidc` or `service` (tokens only).
    pub kind: String,
    pub disabled: bool,
    pub created_at: String,
    pub last_sign_in: Option<String>,
    #[serde(default)]
    pub grants: Vec<(String, Grant)>,
}

/// `POST /api/v1/users`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct NewUser {
    pub name: String,
    pub role: UserRole,
    /// Required for a person; absent for a service account (which only has tokens).
    pub password: Option<String>,
    #[serde(default)]
    pub service: bool,
}

/// `PATCH /api/v1/users/{name}`: what to change.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct UserPatch {
    pub role: Option<UserRole>,
    pub disabled: Option<bool>,
    pub password: Option<String>,
}

/// `PUT /api/v1/projects/{p}/grants/{user}` (a `null` grant removes it).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct GrantBody {
    pub grant: Option<Grant>,
}

/// An API token as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct TokenInfo {
    pub id: String,
    pub user: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used: Option<String>,
}

/// `POST /api/v1/tokens` (own) or `/api/v1/users/{name}/tokens` (a service account, by an admin).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct NewToken {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Days until it expires (default 90; at most 3650).
    pub expires_in_days: Option<u32>,
}

/// A new token: its secret is shown this once.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct CreatedToken {
    pub token: String,
    pub info: TokenInfo,
}

/// A reviewer link as listed (never its secret).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ShareInfo {
    pub id: String,
    pub run_id: Option<String>,
    pub project: Option<String>,
    pub view: String,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub has_password: bool,
    pub require_sign_in: bool,
    pub revoked_at: Option<String>,
    pub last_opened: Option<String>,
    pub opens: i64,
}

/// `POST /api/v1/runs/{id}/shares` or `/api/v1/projects/{p}/shares`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct NewShare {
    /// The view to open: a path under the run (or project) and its query, e.g.
    /// `/runs/r1/fairness?metric=tpr`. Default: the run's (project's) page.
    pub view: Option<String>,
    /// Days until it expires (default 14; at most 365).
    pub expires_in_days: Option<u32>,
    pub password: Option<String>,
    #[serde(default)]
    pub require_sign_in: bool,
}

/// A new link: its URL (path) is shown this once.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct CreatedShare {
    /// `/s/{secret}`: relative to the server's address.
    pub path: String,
    pub info: ShareInfo,
}

/// A reviewer's verdict on a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReviewVerdict {
    Approve,
    RequestChanges,
    /// A comment without a verdict.
    Comment,
}

impl ReviewVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewVerdict::Approve => "approve",
            ReviewVerdict::RequestChanges => "request_changes",
            ReviewVerdict::Comment => "comment",
        }
    }
    pub fn parse(s: &str) -> Option<ReviewVerdict> {
        match s {
            "approve" => Some(ReviewVerdict::Approve),
            "request_changes" => Some(ReviewVerdict::RequestChanges),
            "comment" => Some(ReviewVerdict::Comment),
            _ => None,
        }
    }
}

/// `POST /api/v1/runs/{id}/reviews`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct NewReview {
    pub verdict: ReviewVerdict,
    #[serde(default)]
    pub comment: String,
    /// The view the comment is about (path and query under the run); default the run page.
    pub view: Option<String>,
}

/// A review entry: a comment and/or a verdict, anchored to a view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct Review {
    pub id: String,
    pub run_id: String,
    pub author: String,
    pub verdict: ReviewVerdict,
    pub comment: String,
    pub view: String,
    /// What the view showed when the comment was made (e.g. `tpr · sex=Female · 0.612`).
    pub preview: Option<String>,
    pub created_at: String,
}

/// A run's review state: each reviewer's latest verdict counts once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ReviewState {
    pub run_id: String,
    pub project: Option<String>,
    /// Approvals the project requires (0 outside projects or when unset).
    pub required_approvals: u32,
    /// Reviewers whose latest verdict is approve.
    pub approved_by: Vec<String>,
    /// Reviewers whose latest verdict is request changes.
    pub changes_requested_by: Vec<String>,
    /// The newest validation's verdict (none when never validated).
    pub gates_passed: Option<bool>,
    /// Enough approvals, no open change request, and the gates passed.
    pub blessed: bool,
    pub reviews: Vec<Review>,
}

/// `PUT /api/v1/projects/{p}/approvals`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ApprovalRule {
    pub required: u32,
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AuditEntry {
    pub at: String,
    /// Who: an account name, `share:<link id>`, `local` (zero-setup mode) or `anonymous`.
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    pub address: Option<String>,
}

/// The admin page: accounts and the newest audit entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AdminView {
    pub users: Vec<UserInfo>,
    pub audit: Vec<AuditEntry>,
}

/// A run's sign-off in short, as the validation verdict reports it (for CI).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct ReviewBrief {
    pub required_approvals: u32,
    pub approved_by: Vec<String>,
    pub changes_requested_by: Vec<String>,
    /// Approvals reached, no change requested, gates passed.
    pub blessed: bool,
}

impl From<&ReviewState> for ReviewBrief {
    fn from(s: &ReviewState) -> Self {
        ReviewBrief { required_approvals: s.required_approvals, approved_by: s.approved_by.clone(), changes_requested_by: s.changes_requested_by.clone(), blessed: s.blessed }
    }
}

/// How one may sign in here (the sign-in page's buttons).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct SignInOptions {
    /// The single sign-on button's text, when OpenID Connect is configured.
    pub oidc: Option<String>,
}

/// The account page: the caller's tokens and the share links they made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(ToSchema))]
pub struct AccountView {
    pub name: String,
    pub role: UserRole,
    pub tokens: Vec<TokenInfo>,
    pub shares: Vec<ShareInfo>,
}
