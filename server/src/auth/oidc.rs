//! OpenID Connect sign-in: authorization code flow with PKCE (S256), a nonce and a state,
//! against the issuer the admin configured (`STRATA_OIDC_ISSUER`). The ID token's signature,
//! issuer, audience, expiry and nonce are checked by the `openidconnect` crate; a role comes
//! from a claim (`groups` by default) through the admin's mapping. An account is created on the
//! first sign-in (kind `oidc`, keyed by issuer + subject) and its role follows the claims at
//! every sign-in.
//!
//! The issuer is the admin's choice, not a user's, so the calls to it do not go through the
//! user-URL allow-list; they use a client that never follows redirects.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope};
use strata_app::model::UserRole;

/// The admin's OpenID Connect settings.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back: `{public URL}/auth/oidc/callback`.
    pub redirect_url: String,
    /// The claim holding the user's groups or roles (a string or a list of strings).
    pub role_claim: String,
    /// Claim value → role; the highest role any value maps to wins.
    pub roles: Vec<(String, UserRole)>,
    /// The role of a user none of whose values map; `None`: such a user cannot sign in.
    pub default_role: Option<UserRole>,
    /// What the sign-in button says, e.g. "Sign in with Okta".
    pub label: String,
}

impl OidcConfig {
    /// `strata-admins=admin,strata-editors=editor` → pairs.
    pub fn parse_roles(text: &str) -> Result<Vec<(String, UserRole)>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|pair| {
                let (value, role) = pair.split_once('=').ok_or_else(|| format!("'{pair}' is not value=role"))?;
                let role = UserRole::parse(role.trim()).ok_or_else(|| format!("'{role}' is not a role (viewer, editor, admin)"))?;
                Ok((value.trim().to_string(), role))
            })
            .collect()
    }

    /// The role the claims give, if any.
    pub fn role_for(&self, claims: &serde_json::Value) -> Option<UserRole> {
        let values: Vec<String> = match claims.get(&self.role_claim) {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => vec![],
        };
        self.roles.iter().filter(|(v, _)| values.contains(v)).map(|(_, r)| *r).max().or(self.default_role)
    }
}

/// A sign-in under way: what the callback needs to finish it.
struct Pending {
    verifier: PkceCodeVerifier,
    nonce: Nonce,
    next: String,
    at: Instant,
}

/// The provider's metadata (discovered once) and the sign-ins under way.
pub struct Oidc {
    pub config: OidcConfig,
    metadata: tokio::sync::Mutex<Option<CoreProviderMetadata>>,
    pending: Mutex<HashMap<String, Pending>>,
    http: openidconnect::reqwest::Client,
}

/// How long a browser may take at the provider.
const PENDING_TTL: Duration = Duration::from_secs(600);

/// What a finished sign-in yields.
pub struct Identity {
    /// `issuer subject`: the account's key.
    pub subject: String,
    /// A name for the account (preferred_username, email or subject).
    pub name: String,
    pub role: Option<UserRole>,
    pub next: String,
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Result<Oidc, String> {
        IssuerUrl::new(config.issuer.clone()).map_err(|e| format!("STRATA_OIDC_ISSUER: {e}"))?;
        RedirectUrl::new(config.redirect_url.clone()).map_err(|e| format!("the OIDC redirect URL: {e}"))?;
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| format!("an HTTP client for the OpenID provider: {e}"))?;
        Ok(Oidc { config, metadata: Default::default(), pending: Default::default(), http })
    }

    /// The provider's metadata, discovered on first use (a provider down at start-up does not
    /// stop Strata; the next sign-in tries again).
    async fn metadata(&self) -> Result<CoreProviderMetadata, String> {
        let mut m = self.metadata.lock().await;
        if let Some(m) = m.as_ref() {
            return Ok(m.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(|e| e.to_string())?;
        let found = CoreProviderMetadata::discover_async(issuer, &self.http).await.map_err(|e| format!("discovering the OpenID provider {}: {}", self.config.issuer, crate::service::error_chain(&e)))?;
        *m = Some(found.clone());
        Ok(found)
    }

    fn client(&self, metadata: CoreProviderMetadata) -> Result<impl Fn() -> CoreClientSet, String> {
        let (id, secret, redirect) = (self.config.client_id.clone(), self.config.client_secret.clone(), self.config.redirect_url.clone());
        let redirect = RedirectUrl::new(redirect).map_err(|e| e.to_string())?;
        Ok(move || CoreClient::from_provider_metadata(metadata.clone(), ClientId::new(id.clone()), secret.clone().map(ClientSecret::new)).set_redirect_uri(redirect.clone()))
    }

    /// The provider's authorization URL for a new sign-in that returns to `next`.
    pub async fn start(&self, next: String) -> Result<String, String> {
        let metadata = self.metadata().await?;
        let client = self.client(metadata)?();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(AuthenticationFlow::<CoreResponseType>::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new(self.config.role_claim.clone()))
            .set_pkce_challenge(challenge)
            .url();
        let mut pending = self.pending.lock().expect("oidc lock");
        pending.retain(|_, p| p.at.elapsed() < PENDING_TTL);
        if pending.len() >= 10_000 {
            return Err("too many sign-ins under way; try again in a few minutes".into());
        }
        pending.insert(state.secret().clone(), Pending { verifier, nonce, next, at: Instant::now() });
        Ok(url.to_string())
    }

    /// Finishes a sign-in: exchanges the code, verifies the ID token, reads the identity.
    pub async fn finish(&self, code: String, state: &str) -> Result<Identity, String> {
        let p = self.pending.lock().expect("oidc lock").remove(state).filter(|p| p.at.elapsed() < PENDING_TTL).ok_or("this sign-in expired or was already used; start again")?;
        let metadata = self.metadata().await?;
        let client = self.client(metadata)?();
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| format!("the provider has no token endpoint: {e}"))?
            .set_pkce_verifier(p.verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| format!("exchanging the code at the provider: {}", crate::service::error_chain(&e)))?;
        use openidconnect::TokenResponse;
        let id_token = token.id_token().ok_or("the provider returned no ID token")?;
        let claims = id_token.claims(&client.id_token_verifier(), &p.nonce).map_err(|e| format!("the ID token is not valid: {e}"))?;
        // The other claims (groups) come from the same, now verified, token's payload.
        let raw = id_token.to_string();
        let payload = raw.split('.').nth(1).ok_or("the ID token is not a JWT")?;
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|e| format!("the ID token's payload: {e}"))?;
        let all: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("the ID token's payload: {e}"))?;
        let subject = format!("{} {}", claims.issuer().as_str(), claims.subject().as_str());
        let name = claims
            .preferred_username()
            .map(|u| u.as_str().to_string())
            .or_else(|| claims.email().map(|e| e.as_str().to_string()))
            .unwrap_or_else(|| claims.subject().as_str().to_string());
        Ok(Identity { subject, name, role: self.config.role_for(&all), next: p.next })
    }
}

type CoreClientSet = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// An account name from a provider's user name: the allowed characters only, at most 64.
pub fn account_name(raw: &str) -> String {
    let cleaned: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-') { c } else { '-' }).take(60).collect();
    if cleaned.is_empty() { "user".into() } else { cleaned }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_from_claims() {
        let c = OidcConfig {
            issuer: "http://127.0.0.1:1".into(),
            client_id: "x".into(),
            client_secret: None,
            redirect_url: "http://127.0.0.1:2/auth/oidc/callback".into(),
            role_claim: "groups".into(),
            roles: OidcConfig::parse_roles("strata-admins=admin, strata-editors=editor").unwrap(),
            default_role: None,
            label: "x".into(),
        };
        assert_eq!(c.role_for(&serde_json::json!({"groups": ["staff", "strata-editors"]})), Some(UserRole::Editor));
        assert_eq!(c.role_for(&serde_json::json!({"groups": ["strata-editors", "strata-admins"]})), Some(UserRole::Admin));
        assert_eq!(c.role_for(&serde_json::json!({"groups": "strata-admins"})), Some(UserRole::Admin));
        assert_eq!(c.role_for(&serde_json::json!({"groups": ["staff"]})), None);
        assert_eq!(OidcConfig { default_role: Some(UserRole::Viewer), ..c }.role_for(&serde_json::json!({})), Some(UserRole::Viewer));
        assert!(OidcConfig::parse_roles("x=boss").is_err());
        assert_eq!(account_name("Ann Smith/<x>"), "Ann-Smith--x-");
    }
}
