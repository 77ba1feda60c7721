//! Accounts, sessions, API tokens, project grants, share links, reviews and the audit log.
//! Secrets arrive here already hashed (see `auth`): nothing in this file sees a clear secret.

use sqlx::Row;
use strata_app::model::{AuditEntry, Grant, Review, ReviewVerdict, Scope, ShareInfo, TokenInfo, UserInfo, UserRole};

use super::projects::stamp;
use super::{Store, StoreError};

fn now() -> String {
    stamp(chrono::Utc::now())
}

/// An account as the authenticator needs it.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub role: UserRole,
    pub kind: String,
    pub password_hash: Option<String>,
    pub disabled: bool,
}

/// A session row with its account.
#[derive(Clone, Debug)]
pub struct SessionRow {
    pub account: Account,
    pub last_seen: String,
    pub expires_at: String,
}

/// A token row with its account.
#[derive(Clone, Debug)]
pub struct TokenRow {
    pub id: String,
    pub account: Account,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<String>,
}

/// A share link with what the opener needs to check.
#[derive(Clone, Debug)]
pub struct ShareRow {
    pub info: ShareInfo,
    pub password_hash: Option<String>,
}

const ACCOUNT_COLUMNS: &str = "u.id, u.name, u.role, u.kind, u.password_hash, u.disabled";

fn account(row: &sqlx::any::AnyRow) -> Result<Account, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(Account {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: UserRole::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
        kind: row.try_get("kind")?,
        password_hash: row.try_get("password_hash")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
    })
}

fn scopes(text: &str) -> Vec<Scope> {
    text.split(',').filter_map(Scope::parse).collect()
}

fn share_info(r: &sqlx::any::AnyRow) -> Result<ShareRow, StoreError> {
    let password_hash: Option<String> = r.try_get("password_hash")?;
    Ok(ShareRow {
        info: ShareInfo {
            id: r.try_get("id")?,
            run_id: r.try_get("run_id")?,
            project: r.try_get("project")?,
            view: r.try_get("view")?,
            created_by: r.try_get("created_by")?,
            created_at: r.try_get("created_at")?,
            expires_at: r.try_get("expires_at")?,
            has_password: password_hash.is_some(),
            require_sign_in: r.try_get::<i64, _>("require_sign_in")? != 0,
            revoked_at: r.try_get("revoked_at")?,
            last_opened: r.try_get("last_opened")?,
            opens: r.try_get("opens")?,
        },
        password_hash,
    })
}

const SHARE_COLUMNS: &str =
    "id, run_id, project, view, created_by, created_at, expires_at, password_hash, require_sign_in, revoked_at, last_opened, opens";

impl Store {
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
    }

    /// Creates an account; false when the name is taken.
    pub async fn create_user(&self, name: &str, role: UserRole, kind: &str, password_hash: Option<&str>, oidc_subject: Option<&str>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO users (id, name, role, kind, password_hash, oidc_subject, disabled, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7) ON CONFLICT DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(name)
        .bind(role.as_str())
        .bind(kind)
        .bind(password_hash.map(str::to_string))
        .bind(oidc_subject.map(str::to_string))
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn account_by_name(&self, name: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM users u WHERE u.name = $1")).bind(name).fetch_optional(&self.pool).await?;
        row.as_ref().map(account).transpose()
    }

    pub async fn account_by_subject(&self, subject: &str) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM users u WHERE u.oidc_subject = $1"))
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account).transpose()
    }

    /// Changes an account; false when there is no such account.
    pub async fn update_user(&self, name: &str, role: Option<UserRole>, disabled: Option<bool>, password_hash: Option<&str>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET role = COALESCE($1, role), disabled = COALESCE($2, disabled), password_hash = COALESCE($3, password_hash) WHERE name = $4",
        )
        .bind(role.map(|r| r.as_str().to_string()))
        .bind(disabled.map(i64::from))
        .bind(password_hash.map(str::to_string))
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn touch_sign_in(&self, user_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET last_sign_in = $1 WHERE id = $2").bind(now()).bind(user_id).execute(&self.pool).await?;
        Ok(())
    }

    /// Every account with its grants, by name.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>, StoreError> {
        let rows = sqlx::query("SELECT id, name, role, kind, disabled, created_at, last_sign_in FROM users ORDER BY name").fetch_all(&self.pool).await?;
        let grants = sqlx::query("SELECT user_id, project, grant_level FROM project_grants ORDER BY project").fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.try_get("id")?;
            let role: String = r.try_get("role")?;
            let mut mine = Vec::new();
            for g in &grants {
                if g.try_get::<String, _>("user_id")? == id
                    && let Some(level) = Grant::parse(&g.try_get::<String, _>("grant_level")?)
                {
                    mine.push((g.try_get("project")?, level));
                }
            }
            out.push(UserInfo {
                name: r.try_get("name")?,
                role: UserRole::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
                kind: r.try_get("kind")?,
                disabled: r.try_get::<i64, _>("disabled")? != 0,
                created_at: r.try_get("created_at")?,
                last_sign_in: r.try_get("last_sign_in")?,
                grants: mine,
            });
        }
        Ok(out)
    }

    pub async fn grants_of(&self, user_id: &str) -> Result<Vec<(String, Grant)>, StoreError> {
        let rows = sqlx::query("SELECT project, grant_level FROM project_grants WHERE user_id = $1 ORDER BY project").bind(user_id).fetch_all(&self.pool).await?;
        let mut out = Vec::new();
        for r in &rows {
            if let Some(g) = Grant::parse(&r.try_get::<String, _>("grant_level")?) {
                out.push((r.try_get("project")?, g));
            }
        }
        Ok(out)
    }

    /// Sets (or with `None` removes) an account's grant on a project.
    pub async fn set_grant(&self, project: &str, user_id: &str, grant: Option<Grant>) -> Result<(), StoreError> {
        match grant {
            Some(g) => {
                sqlx::query(
                    "INSERT INTO project_grants (project, user_id, grant_level) VALUES ($1, $2, $3) \
                     ON CONFLICT (project, user_id) DO UPDATE SET grant_level = excluded.grant_level",
                )
                .bind(project)
                .bind(user_id)
                .bind(g.as_str())
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM project_grants WHERE project = $1 AND user_id = $2").bind(project).bind(user_id).execute(&self.pool).await?;
            }
        }
        Ok(())
    }

    pub async fn create_session(&self, id_hash: &str, user_id: &str, expires_at: &str) -> Result<(), StoreError> {
        let t = now();
        sqlx::query("INSERT INTO sessions (id_hash, user_id, created_at, last_seen, expires_at) VALUES ($1, $2, $3, $3, $4)")
            .bind(id_hash)
            .bind(user_id)
            .bind(t)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS}, s.last_seen, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1"
        ))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok(SessionRow { account: account(&r)?, last_seen: r.try_get("last_seen")?, expires_at: r.try_get("expires_at")? })).transpose()
    }

    pub async fn touch_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE id_hash = $2").bind(now()).bind(id_hash).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(&self.pool).await?;
        Ok(())
    }

    /// Signs an account out everywhere; returns the sessions ended.
    pub async fn delete_sessions_of(&self, user_id: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&self.pool).await?.rows_affected())
    }

    pub async fn create_token(&self, hash: &str, user_id: &str, name: &str, scopes: &[Scope], expires_at: Option<&str>) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let scopes = scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",");
        sqlx::query("INSERT INTO api_tokens (id, hash, user_id, name, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&id)
            .bind(hash)
            .bind(user_id)
            .bind(name)
            .bind(scopes)
            .bind(now())
            .bind(expires_at.map(str::to_string))
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    pub async fn token(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS}, t.id AS token_id, t.scopes, t.expires_at, t.last_used FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let id: String = r.try_get("token_id")?;
        // Last use is recorded at most once a minute per token.
        let last: Option<String> = r.try_get("last_used")?;
        let stale = last.as_deref().and_then(|l| chrono::DateTime::parse_from_rfc3339(l).ok()).is_none_or(|l| chrono::Utc::now().signed_duration_since(l) > chrono::Duration::seconds(60));
        if stale {
            sqlx::query("UPDATE api_tokens SET last_used = $1 WHERE id = $2").bind(now()).bind(&id).execute(&self.pool).await?;
        }
        Ok(Some(TokenRow { id, account: account(&r)?, scopes: scopes(&r.try_get::<String, _>("scopes")?), expires_at: r.try_get("expires_at")? }))
    }

    /// Tokens of one account (or of all, for an admin), newest first.
    pub async fn list_tokens(&self, user_id: Option<&str>) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.id, u.name AS user_name, t.name, t.scopes, t.created_at, t.expires_at, t.last_used FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE ($1 IS NULL OR t.user_id = $1) ORDER BY t.created_at DESC",
        )
        .bind(user_id.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.try_get("id")?,
                    user: r.try_get("user_name")?,
                    name: r.try_get("name")?,
                    scopes: scopes(&r.try_get::<String, _>("scopes")?),
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    last_used: r.try_get("last_used")?,
                })
            })
            .collect()
    }

    /// Deletes a token (only the account's own unless `user_id` is `None`); false if none.
    pub async fn delete_token(&self, id: &str, user_id: Option<&str>) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND ($2 IS NULL OR user_id = $2)")
            .bind(id)
            .bind(user_id.map(str::to_string))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The project a run belongs to: `None` when there is no such run, `Some(None)` outside projects.
    pub async fn run_project(&self, id: &str) -> Result<Option<Option<String>>, StoreError> {
        let row = sqlx::query("SELECT project FROM runs WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| r.try_get::<Option<String>, _>("project")).transpose().map_err(Into::into)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_share(
        &self,
        hash: &str,
        run_id: Option<&str>,
        project: Option<&str>,
        view: &str,
        created_by: &str,
        expires_at: &str,
        password_hash: Option<&str>,
        require_sign_in: bool,
    ) -> Result<ShareInfo, StoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        sqlx::query(
            "INSERT INTO share_links (id, hash, run_id, project, view, created_by, created_at, expires_at, password_hash, require_sign_in, opens) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0)",
        )
        .bind(&id)
        .bind(hash)
        .bind(run_id.map(str::to_string))
        .bind(project.map(str::to_string))
        .bind(view)
        .bind(created_by)
        .bind(now())
        .bind(expires_at)
        .bind(password_hash.map(str::to_string))
        .bind(i64::from(require_sign_in))
        .execute(&self.pool)
        .await?;
        Ok(self.share_by_id(&id).await?.map(|s| s.info).ok_or_else(|| StoreError::Corrupt("a new share link vanished".into()))?)
    }

    pub async fn share_by_hash(&self, hash: &str) -> Result<Option<ShareRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {SHARE_COLUMNS} FROM share_links WHERE hash = $1")).bind(hash).fetch_optional(&self.pool).await?;
        row.as_ref().map(share_info).transpose()
    }

    pub async fn share_by_id(&self, id: &str) -> Result<Option<ShareRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {SHARE_COLUMNS} FROM share_links WHERE id = $1")).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(share_info).transpose()
    }

    /// Links of a run, a project and/or a creator (each filter optional), newest first.
    pub async fn list_shares(&self, run_id: Option<&str>, project: Option<&str>, created_by: Option<&str>) -> Result<Vec<ShareInfo>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SHARE_COLUMNS} FROM share_links WHERE ($1 IS NULL OR run_id = $1) AND ($2 IS NULL OR project = $2) AND ($3 IS NULL OR created_by = $3) \
             ORDER BY created_at DESC"
        ))
        .bind(run_id.map(str::to_string))
        .bind(project.map(str::to_string))
        .bind(created_by.map(str::to_string))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| share_info(r).map(|s| s.info)).collect()
    }

    /// Revokes a link; false if there is no such link.
    pub async fn revoke_share(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE share_links SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2").bind(now()).bind(id).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn share_opened(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE share_links SET last_opened = $1, opens = opens + 1 WHERE id = $2").bind(now()).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn add_review(&self, run_id: &str, author: &str, verdict: ReviewVerdict, comment: &str, view: &str, preview: Option<&str>) -> Result<Review, StoreError> {
        let r = Review {
            id: uuid::Uuid::new_v4().to_string(),
            run_id: run_id.to_string(),
            author: author.to_string(),
            verdict,
            comment: comment.to_string(),
            view: view.to_string(),
            preview: preview.map(str::to_string),
            created_at: now(),
        };
        sqlx::query("INSERT INTO reviews (id, run_id, author, verdict, comment, view, preview, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&r.id)
            .bind(&r.run_id)
            .bind(&r.author)
            .bind(r.verdict.as_str())
            .bind(&r.comment)
            .bind(&r.view)
            .bind(r.preview.clone())
            .bind(&r.created_at)
            .execute(&self.pool)
            .await?;
        Ok(r)
    }

    /// A run's reviews, oldest first.
    pub async fn reviews(&self, run_id: &str) -> Result<Vec<Review>, StoreError> {
        let rows = sqlx::query("SELECT id, run_id, author, verdict, comment, view, preview, created_at FROM reviews WHERE run_id = $1 ORDER BY created_at, id")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let v: String = r.try_get("verdict")?;
                Ok(Review {
                    id: r.try_get("id")?,
                    run_id: r.try_get("run_id")?,
                    author: r.try_get("author")?,
                    verdict: ReviewVerdict::parse(&v).ok_or_else(|| StoreError::Corrupt(format!("unknown verdict {v:?}")))?,
                    comment: r.try_get("comment")?,
                    view: r.try_get("view")?,
                    preview: r.try_get("preview")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub async fn audit(&self, actor: &str, action: &str, target: Option<&str>, detail: Option<&str>, address: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_log (id, at, actor, action, target, detail, address) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(now())
            .bind(actor)
            .bind(action)
            .bind(target.map(str::to_string))
            .bind(detail.map(str::to_string))
            .bind(address.map(str::to_string))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest `limit` audit entries (optionally of one action), newest first.
    pub async fn audit_log(&self, limit: i64, action: Option<&str>) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query("SELECT at, actor, action, target, detail, address FROM audit_log WHERE ($1 IS NULL OR action = $1) ORDER BY at DESC, id LIMIT $2")
            .bind(action.map(str::to_string))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: r.try_get("detail")?,
                    address: r.try_get("address")?,
                })
            })
            .collect()
    }
}
