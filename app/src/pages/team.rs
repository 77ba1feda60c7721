//! Teams: the sign-in page, the header's account badge, "Share with a reviewer" on every run
//! view, the review panel of a run (comments anchored to views, approvals, share links) and the
//! admin page (accounts, audit log).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_location, use_query_map};

use crate::components::ErrorBox;
use crate::model::{Caller, CallerKind, Perm, ReviewState, ReviewVerdict, Scope, ShareInfo, UserRole};
use crate::pages::runs::urlencode;
use crate::server_fns::{AddReview, AddUser, CreatePersonalToken, CreateProjectShare, CreateShare, DeletePersonalToken, SignOutEverywhere, get_account_view, RevokeShare, SetUser, get_admin_view, get_review_state, get_run_shares, sign_in_options, who_am_i};

/// `/login`: a plain form posted to `/auth/login` (works without JavaScript).
#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let next = query.read_untracked().get("next").filter(|n| n.starts_with('/') && !n.starts_with("//")).unwrap_or_else(|| "/".into());
    let failed = query.read_untracked().get("error").is_some();
    let me = use_caller();
    let options = Resource::new(|| (), |_| sign_in_options());
    let sso_href = format!("/auth/oidc/login?next={}", urlencode(&next));
    view! {
        <Title text="Sign in" />
        <section class="auth-box">
            <h1>"Sign in"</h1>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    match me.await {
                        Ok(c) if c.kind == CallerKind::Open => view! {
                            <p class="muted">"This Strata has no accounts yet: everyone on this machine may do everything. "
                                "Create the first admin with " <code>"strata users add NAME --role admin"</code> "."</p>
                        }.into_any(),
                        Ok(c) if c.kind == CallerKind::User => view! {
                            <p>{format!("You are signed in as {}.", c.name.clone().unwrap_or_default())}</p>
                        }.into_any(),
                        _ => ().into_any(),
                    }
                })}
            </Suspense>
            {failed.then(|| view! { <p class="error" role="alert">"Wrong name or password."</p> })}
            <form method="post" action="/auth/login" class="stack">
                <input type="hidden" name="next" value=next />
                <label>"Name " <input type="text" name="name" autocomplete="username" required autofocus /></label>
                <label>"Password " <input type="password" name="password" autocomplete="current-password" required /></label>
                <button type="submit">"Sign in"</button>
            </form>
            <Suspense fallback=|| ()>
                {move || {
                    let sso_href = sso_href.clone();
                    Suspend::new(async move {
                        options.await.ok().and_then(|o| o.oidc).map(|label| view! {
                            <p class="sso"><a class="button" href=sso_href rel="external" data-testid="sso">{label}</a></p>
                        })
                    })
                }}
            </Suspense>
        </section>
    }
}

/// Who is calling, asked once per document and shared through the context. Signing in and out are
/// native form posts (a new document), so the answer cannot change under a page: a view rebuilt in
/// place (each slices or fairness interaction) and every component that hides edit controls reads
/// this one answer instead of asking the server again.
#[derive(Clone, Copy)]
struct CallerAnswer(Resource<Result<Caller, crate::server_fns::AppError>>);

/// Asks who is calling, for the whole document ([`use_caller`]); the app's root calls it once.
pub fn provide_caller() {
    provide_context(CallerAnswer(Resource::new(|| (), |_| who_am_i())));
}

/// The document's answer to "who is calling" (a new request where no root provided one).
pub fn use_caller() -> Resource<Result<Caller, crate::server_fns::AppError>> {
    use_context::<CallerAnswer>().map(|c| c.0).unwrap_or_else(|| Resource::new(|| (), |_| who_am_i()))
}

/// The header's right side: who is signed in and "Sign out", or "Sign in", or the note that
/// this is a read-only share link. Also decides which navigation links show.
#[component]
pub fn AccountBadge() -> impl IntoView {
    let me = use_caller();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let c = me.await.unwrap_or_else(|_| Caller::anonymous());
                badge(c)
            })}
        </Suspense>
    }
}

fn badge(c: Caller) -> AnyView {
    let editor = c.may_anywhere(Perm::Edit, Scope::Write);
    let admin = c.kind == CallerKind::Open || c.role == Some(UserRole::Admin);
    let signed_in = matches!(c.kind, CallerKind::User | CallerKind::Token);
    match c.kind {
        CallerKind::Share => view! {
            <span class="badge share-badge" data-testid="share-badge">"Shared with you · read-only"</span>
        }.into_any(),
        CallerKind::Anonymous => view! { <a href="/login">"Sign in"</a> }.into_any(),
        _ => view! {
            <span class="account">
                {editor.then(|| view! { <a href="/upload">"Upload"</a> })}
                {admin.then(|| view! { <a href="/admin">"Admin"</a> })}
                {signed_in.then(|| view! {
                    <a href="/account" class="muted" data-testid="signed-in-as">{format!("{} ({})", c.name.clone().unwrap_or_default(), c.role.map(|r| r.as_str()).unwrap_or(""))}</a>
                    <form method="post" action="/auth/logout" class="inline"><button type="submit" class="link">"Sign out"</button></form>
                })}
            </span>
        }.into_any(),
    }
}

/// "Share with a reviewer": a read-only link to exactly this view (path and query), with an
/// expiry and an optional password. Shown to whoever may edit the run or project (the server
/// decides); on a run's views also "Comment on this view".
#[component]
pub fn ShareView(#[prop(optional, into)] run_id: Option<String>, #[prop(optional, into)] project: Option<String>) -> impl IntoView {
    let loc = use_location();
    let view_url = Memo::new(move |_| {
        let (path, search) = (loc.pathname.get(), loc.search.get());
        if search.is_empty() { path } else { format!("{path}?{}", search.trim_start_matches('?')) }
    });
    let me = use_caller();
    let for_run = ServerAction::<CreateShare>::new();
    let for_project = ServerAction::<CreateProjectShare>::new();
    let made = Signal::derive(move || for_run.value().get().or_else(|| for_project.value().get()));
    let open = RwSignal::new(false);
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let (run_id, project) = (run_id.clone(), project.clone());
                Suspend::new(async move {
                    let c = me.await.unwrap_or_else(|_| Caller::anonymous());
                    let can_share = c.may_anywhere(Perm::Edit, Scope::Write);
                    let review_href = run_id.clone().filter(|_| c.is_account()).map(|id| {
                        move || format!("/runs/{}?review_view={}#review", urlencode(&id), urlencode(&view_url.get()))
                    });
                    let fields = move || view! {
                        <input type="hidden" name="view" value=move || view_url.get() />
                        <label>"Expires in "
                            <select name="expires_in_days" aria-label="Expires in">
                                <option value="1">"1 day"</option>
                                <option value="7">"7 days"</option>
                                <option value="14" selected>"14 days"</option>
                                <option value="30">"30 days"</option>
                                <option value="90">"90 days"</option>
                            </select>
                        </label>
                        <label>"Password (optional) " <input type="password" name="password" autocomplete="new-password" aria-label="Link password" /></label>
                        <label><input type="checkbox" name="require_sign_in" />" Require sign-in"</label>
                        <button type="submit" data-testid="share-create">"Create link"</button>
                    };
                    view! {
                        <div class="share-bar">
                            {review_href.map(|href| view! { <a class="button" href=href data-testid="review-this-view">"Comment on this view"</a> })}
                            {can_share.then(|| view! {
                                <button type="button" on:click=move |_| open.update(|o| *o = !*o) data-testid="share-open">"Share with a reviewer"</button>
                            })}
                        </div>
                        {move || {
                            let (run_id, project) = (run_id.clone(), project.clone());
                            (can_share && open.get()).then(move || match (run_id, project) {
                                (Some(id), _) => view! {
                                    <ActionForm action=for_run attr:class="share-form">
                                        <input type="hidden" name="id" value=id />
                                        {fields()}
                                    </ActionForm>
                                }.into_any(),
                                (None, Some(p)) => view! {
                                    <ActionForm action=for_project attr:class="share-form">
                                        <input type="hidden" name="project" value=p />
                                        {fields()}
                                    </ActionForm>
                                }.into_any(),
                                (None, None) => ().into_any(),
                            })
                        }}
                        {move || made.get().map(|r| match r {
                            Ok(s) => {
                                let origin = web_origin();
                                let url = format!("{origin}{}", s.path);
                                view! {
                                    <p class="ok share-made" role="status">"Read-only link (shown once): "
                                        <input type="text" readonly size="70" value=url.clone() data-testid="share-url" aria-label="Share link" />
                                        <button type="button" class="copy-link" data-copy-text=url>"Copy"</button>
                                        <span class="muted">{format!(" expires {}", short_time(&s.info.expires_at))}</span>
                                    </p>
                                }.into_any()
                            }
                            Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                        })}
                    }.into_any()
                })
            }}
        </Suspense>
    }
}

/// The page's origin (`https://strata.example`), for absolute links; empty on the server.
fn web_origin() -> String {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        String::new()
    }
}

/// `2026-11-30T12:34:56.123456Z` → `2026-11-30 12:34`.
fn short_time(t: &str) -> String {
    t.get(..16).map(|s| s.replace('T', " ")).unwrap_or_else(|| t.to_string())
}

fn verdict_text(v: ReviewVerdict) -> &'static str {
    match v {
        ReviewVerdict::Approve => "approved",
        ReviewVerdict::RequestChanges => "requested changes",
        ReviewVerdict::Comment => "commented",
    }
}

/// The run page's review section: state (approvals, gates, blessed), the reviews with the view
/// each is about, a form to comment / approve, and the run's share links.
#[component]
pub fn ReviewPanel(#[prop(into)] run_id: String) -> impl IntoView {
    let query = use_query_map();
    let add = ServerAction::<AddReview>::new();
    let revoke = ServerAction::<RevokeShare>::new();
    let id = run_id.clone();
    let state = Resource::new(move || add.version().get(), move |_| get_review_state(id.clone()));
    let id = run_id.clone();
    let shares = Resource::new(move || revoke.version().get(), move |_| get_run_shares(id.clone()));
    let me = use_caller();
    let home = format!("/runs/{}", urlencode(&run_id));
    let anchored = query.read_untracked().get("review_view").filter(|v| v.starts_with(&home)).unwrap_or_else(|| home.clone());
    let added = add.value();
    view! {
        <section id="review" class="review" data-testid="review-panel">
            <h2>"Review"</h2>
            <Suspense fallback=|| view! { <p>"Loading reviews…"</p> }>
                {move || Suspend::new(async move {
                    match state.await {
                        Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                        Ok(s) => review_state(s).into_any(),
                    }
                })}
            </Suspense>
            <Suspense fallback=|| ()>
                {move || {
                    let (run_id, anchored) = (run_id.clone(), anchored.clone());
                    Suspend::new(async move {
                        let c = me.await.unwrap_or_else(|_| Caller::anonymous());
                        c.is_account().then(|| view! {
                            <ActionForm action=add attr:class="review-form">
                                <input type="hidden" name="id" value=run_id.clone() />
                                <input type="hidden" name="view" value=anchored.clone() />
                                <p class="muted">"About: " <a href=anchored.clone()>{anchored.clone()}</a></p>
                                <label class="block">"Comment " <textarea name="comment" rows="3" cols="70" aria-label="Comment"></textarea></label>
                                <fieldset class="controls"><legend>"Verdict"</legend>
                                    <label><input type="radio" name="verdict" value="comment" checked />" Comment only"</label>
                                    <label><input type="radio" name="verdict" value="approve" />" Approve"</label>
                                    <label><input type="radio" name="verdict" value="request_changes" />" Request changes"</label>
                                </fieldset>
                                <button type="submit" data-testid="review-submit">"Submit review"</button>
                                {move || added.get().and_then(|r| r.err()).map(|e| view! { <ErrorBox message=e.to_string() /> })}
                            </ActionForm>
                        })
                    })
                }}
            </Suspense>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    // Only editors may list links; for others the call is refused and nothing shows.
                    shares.await.ok().filter(|l| !l.is_empty()).map(|l| share_table(l, revoke))
                })}
            </Suspense>
        </section>
    }
}

fn review_state(s: ReviewState) -> impl IntoView {
    let gates = match s.gates_passed {
        Some(true) => "gates passed",
        Some(false) => "gates FAILED",
        None if s.project.is_some() => "not validated yet",
        None => "no gates (outside projects)",
    };
    let need = s.required_approvals.max(1);
    let headline = if s.blessed {
        format!("Blessed: {} approval(s), {gates}", s.approved_by.len())
    } else {
        format!("Not blessed: {} of {need} approval(s), {gates}", s.approved_by.len())
    };
    view! {
        <p class=if s.blessed { "review-state blessed" } else { "review-state" } data-testid="review-state">{headline}</p>
        {(!s.approved_by.is_empty()).then(|| view! { <p data-testid="approved-by">{format!("Approved by {}", s.approved_by.join(", "))}</p> })}
        {(!s.changes_requested_by.is_empty()).then(|| view! { <p class="error">{format!("Changes requested by {}", s.changes_requested_by.join(", "))}</p> })}
        <ol class="reviews">
            {s.reviews.iter().rev().map(|r| view! {
                <li data-testid="review">
                    <strong>{r.author.clone()}</strong> " " <span class=format!("verdict {}", r.verdict.as_str())>{verdict_text(r.verdict)}</span>
                    " · " <span class="muted">{short_time(&r.created_at)}</span>
                    <div class="muted">"on " <a href=r.view.clone()>{r.view.clone()}</a></div>
                    {r.preview.clone().map(|p| view! { <div class="preview mono" data-testid="review-preview">{p}</div> })}
                    {(!r.comment.is_empty()).then(|| view! { <p class="comment">{r.comment.clone()}</p> })}
                </li>
            }).collect_view()}
        </ol>
    }
}

fn share_table(links: Vec<ShareInfo>, revoke: ServerAction<RevokeShare>) -> impl IntoView {
    view! {
        <h3>"Share links"</h3>
        <div class="table-scroll" tabindex="0" role="region" aria-label="Share links">
            <table class="data" data-testid="share-links">
            <thead><tr><th>"View"</th><th>"By"</th><th>"Expires"</th><th>"Opened"</th><th>"Last opened"</th><th>"State"</th><th></th></tr></thead>
            <tbody>
                {links.into_iter().map(|l| {
                    let live = l.revoked_at.is_none();
                    view! {
                        <tr>
                            <td><a href=l.view.clone()>{l.view.clone()}</a>{l.has_password.then_some(" 🔒")}</td>
                            <td>{l.created_by.clone()}</td>
                            <td>{short_time(&l.expires_at)}</td>
                            <td class="num">{l.opens}</td>
                            <td>{l.last_opened.as_deref().map(short_time).unwrap_or_default()}</td>
                            <td>{if live { "active".to_string() } else { format!("revoked {}", short_time(l.revoked_at.as_deref().unwrap_or(""))) }}</td>
                            <td>{live.then(|| view! {
                                <ActionForm action=revoke>
                                    <input type="hidden" name="sid" value=l.id.clone() />
                                    <button type="submit" data-testid="share-revoke">"Revoke"</button>
                                </ActionForm>
                            })}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
            </table>
        </div>
    }
}

/// `/admin`: accounts (add, change role, disable) and the audit log.
#[component]
pub fn AdminPage() -> impl IntoView {
    let add = ServerAction::<AddUser>::new();
    let set = ServerAction::<SetUser>::new();
    let data = Resource::new(move || (add.version().get(), set.version().get()), |_| get_admin_view());
    let (added, changed) = (add.value(), set.value());
    view! {
        <Title text="Admin" />
        <h1>"Admin"</h1>
        <h2>"Accounts"</h2>
        <ActionForm action=add attr:class="controls">
            <label>"Name " <input type="text" name="name" required aria-label="New account name" /></label>
            <label>"Role "
                <select name="role" aria-label="New account role">
                    <option value="viewer">"viewer"</option>
                    <option value="editor">"editor"</option>
                    <option value="admin">"admin"</option>
                </select>
            </label>
            <label>"Password " <input type="password" name="password" required autocomplete="new-password" aria-label="New account password" /></label>
            <button type="submit" data-testid="add-user">"Add account"</button>
        </ActionForm>
        {move || added.get().map(|r| match r {
            Ok(u) => view! { <p class="ok" role="status">{format!("Added {} ({}).", u.name, u.role.as_str())}</p> }.into_any(),
            Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
        })}
        {move || changed.get().and_then(|r| r.err()).map(|e| view! { <ErrorBox message=e.to_string() /> })}
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
                    Ok(v) => view! {
                        <div class="table-scroll" tabindex="0" role="region" aria-label="Users">
                            <table class="data" data-testid="users">
                            <thead><tr><th>"Name"</th><th>"Role"</th><th>"Kind"</th><th>"Grants"</th><th>"Last sign-in"</th><th>"State"</th><th></th></tr></thead>
                            <tbody>
                                {v.users.into_iter().map(|u| {
                                    let grants = u.grants.iter().map(|(p, g)| format!("{p}: {}", g.as_str())).collect::<Vec<_>>().join(", ");
                                    let (name1, name2) = (u.name.clone(), u.name.clone());
                                    view! {
                                        <tr>
                                            <td>{u.name.clone()}</td>
                                            <td>
                                                <ActionForm action=set attr:class="inline">
                                                    <input type="hidden" name="name" value=name1 />
                                                    <select name="role" aria-label=format!("role of {}", u.name)>
                                                        {["viewer", "editor", "admin"].into_iter().map(|r| view! { <option value=r selected=r == u.role.as_str()>{r}</option> }).collect_view()}
                                                    </select>
                                                    <button type="submit">"Set"</button>
                                                </ActionForm>
                                            </td>
                                            <td>{u.kind.clone()}</td>
                                            <td>{grants}</td>
                                            <td>{u.last_sign_in.as_deref().map(short_time).unwrap_or_default()}</td>
                                            <td>{if u.disabled { "disabled" } else { "active" }}</td>
                                            <td>
                                                <ActionForm action=set attr:class="inline">
                                                    <input type="hidden" name="name" value=name2 />
                                                    <input type="hidden" name="role" value="" />
                                                    <input type="hidden" name="disabled" value=if u.disabled { "false" } else { "true" } />
                                                    <button type="submit">{if u.disabled { "Enable" } else { "Disable" }}</button>
                                                </ActionForm>
                                            </td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                            </table>
                        </div>
                        <h2>"Audit log"</h2>
                        <p class="muted">"The newest 200 entries; all of them: " <a href="/api/v1/audit?limit=5000" rel="external">"/api/v1/audit"</a></p>
                        <div class="table-scroll" tabindex="0" role="region" aria-label="Audit log">
                            <table class="data" data-testid="audit">
                            <thead><tr><th>"When (UTC)"</th><th>"Who"</th><th>"Action"</th><th>"On"</th><th>"From"</th></tr></thead>
                            <tbody>
                                {v.audit.into_iter().map(|a| view! {
                                    <tr>
                                        <td>{short_time(&a.at)}</td>
                                        <td>{a.actor}</td>
                                        <td class="mono">{a.action}</td>
                                        <td class="mono">{a.target.unwrap_or_default()}</td>
                                        <td class="mono">{a.address.unwrap_or_default()}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                            </table>
                        </div>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// `/account`: the signed-in account's API tokens (create, shown once; delete), the share links
/// it made (with their use; revoke), and "sign out everywhere".
#[component]
pub fn AccountPage() -> impl IntoView {
    let create = ServerAction::<CreatePersonalToken>::new();
    let delete = ServerAction::<DeletePersonalToken>::new();
    let revoke = ServerAction::<RevokeShare>::new();
    let everywhere = ServerAction::<SignOutEverywhere>::new();
    let data = Resource::new(move || (create.version().get(), delete.version().get(), revoke.version().get()), |_| get_account_view());
    let made = create.value();
    view! {
        <Title text="Account" />
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <h1>"Account"</h1> <ErrorBox message=e.to_string() /> }.into_any(),
                    Ok(v) => view! {
                        <h1>{format!("{} ({})", v.name, v.role.as_str())}</h1>
                        <h2>"API tokens"</h2>
                        <p class="muted">"For scripts and CI: send one as " <code>"Authorization: Bearer …"</code> " or set " <code>"STRATA_TOKEN"</code>
                            " for " <code>"strata validate --server …"</code> ". A token acts as you, cut down to its scope."</p>
                        <div class="table-scroll" tabindex="0" role="region" aria-label="Tokens">
                            <table class="data" data-testid="tokens">
                            <thead><tr><th>"Name"</th><th>"Scopes"</th><th>"Created"</th><th>"Expires"</th><th>"Last used"</th><th></th></tr></thead>
                            <tbody>
                                {v.tokens.into_iter().map(|t| view! {
                                    <tr>
                                        <td>{t.name.clone()}</td>
                                        <td>{t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")}</td>
                                        <td>{short_time(&t.created_at)}</td>
                                        <td>{t.expires_at.as_deref().map(short_time).unwrap_or_else(|| "never".into())}</td>
                                        <td>{t.last_used.as_deref().map(short_time).unwrap_or_default()}</td>
                                        <td>
                                            <ActionForm action=delete>
                                                <input type="hidden" name="tid" value=t.id.clone() />
                                                <button type="submit">"Delete"</button>
                                            </ActionForm>
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                            </table>
                        </div>
                        {share_table(v.shares, revoke)}
                    }.into_any(),
                }
            })}
        </Suspense>
        <ActionForm action=create attr:class="controls">
            <label>"New token " <input type="text" name="name" required placeholder="what it is for, e.g. ci pipeline" aria-label="Token name" /></label>
            <label>"Scope "
                <select name="scope" aria-label="Token scope">
                    <option value="read">"read"</option>
                    <option value="validate" selected>"validate (read + validate runs)"</option>
                    <option value="write">"write"</option>
                    <option value="admin">"admin"</option>
                </select>
            </label>
            <label>"Expires in "
                <select name="expires_in_days" aria-label="Token expiry">
                    <option value="30">"30 days"</option>
                    <option value="90" selected>"90 days"</option>
                    <option value="365">"1 year"</option>
                </select>
            </label>
            <button type="submit" data-testid="token-create">"Create token"</button>
        </ActionForm>
        {move || made.get().map(|r| match r {
            Ok(t) => view! {
                <p class="ok" role="status">"Your new token (shown once; copy it now): "
                    <input type="text" readonly size="60" value=t.token.clone() data-testid="token-secret" aria-label="New token" />
                    <button type="button" class="copy-link" data-copy-text=t.token.clone()>"Copy"</button>
                </p>
            }.into_any(),
            Err(e) => view! { <ErrorBox message=e.to_string() /> }.into_any(),
        })}
        <h2>"Sessions"</h2>
        <ActionForm action=everywhere>
            <button type="submit">"Sign out everywhere"</button>
            <span class="muted">" ends every session of this account, this one included (tokens stay valid)"</span>
        </ActionForm>
    }
}

/// Controls that change something (save, train, validate): not shown to a share link's reader
/// or to someone signed out, who could not use them (the server would refuse).
#[component]
pub fn EditOnly(children: ChildrenFn) -> impl IntoView {
    let me = use_caller();
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let children = children.clone();
                Suspend::new(async move {
                    let c = me.await.unwrap_or_else(|_| Caller::anonymous());
                    (!matches!(c.kind, CallerKind::Share | CallerKind::Anonymous)).then(|| children())
                })
            }}
        </Suspense>
    }
}
