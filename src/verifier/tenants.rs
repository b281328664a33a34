//! Key sources of a tenant-templated issuer without a shared JWKS: one per
//! admitted tenant, found by that tenant's OIDC discovery, created on the
//! first token naming it, and bounded in number.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::Reason;
use crate::jwks::{AlgSet, FetchSettings, KeySource, Lifecycle, Location, Remote, Shared};

/// Defaults to 64 tenants per template.
pub(crate) const DEFAULT_MAX_TENANTS: usize = 64;

/// What a new tenant's key source is made of.
pub(crate) struct Factory {
    pub(crate) client: reqwest::Client,
    pub(crate) settings: FetchSettings,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) shared: Shared,
    pub(crate) algs: AlgSet,
}

struct Tenant {
    iss: Box<str>,
    keys: Arc<KeySource>,
    // Dropped with the verifier: stops the tenant's refresher.
    _stop: oneshot::Sender<()>,
}

pub(crate) struct TenantKeys {
    factory: Factory,
    tenants: RwLock<Vec<Tenant>>,
    max: usize,
}

impl TenantKeys {
    pub(crate) fn new(factory: Factory, max: usize) -> Self {
        Self {
            factory,
            tenants: RwLock::new(Vec::new()),
            max,
        }
    }

    /// The key source for the issuer `iss` (an admitted tenant's name),
    /// created on first use: its first fetch starts at once. Past the bound,
    /// new tenants are refused (503: the service is at its configured
    /// capacity, not the client at fault).
    pub(crate) fn get(&self, iss: &str) -> Result<Arc<KeySource>, Reason> {
        {
            let tenants = self.tenants.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(t) = tenants.iter().find(|t| *t.iss == *iss) {
                return Ok(Arc::clone(&t.keys));
            }
        }
        let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = tenants.iter().find(|t| *t.iss == *iss) {
            return Ok(Arc::clone(&t.keys));
        }
        if tenants.len() >= self.max {
            // SECURITY (fetch amplification): at most `max` tenants ever get
            // a key source, so admitted-but-unused tenants cannot make the
            // service fetch without bound.
            tracing::warn!(
                max = self.max,
                "tenant key sources are at their bound; raise Issuer::max_tenants to admit more"
            );
            return Err(Reason::KeysUnavailable);
        }
        let f = &self.factory;
        let keys = Arc::new(KeySource::new(
            iss.into(),
            f.algs,
            None,
            Some(Remote {
                client: f.client.clone(),
                settings: f.settings.clone(),
                location: Location::Discover {
                    issuer: iss.to_owned(),
                },
            }),
            f.lifecycle.clone(),
            f.shared.clone(),
        ));
        let (stop, rx) = oneshot::channel();
        keys.spawn_refresher(rx, Duration::ZERO);
        tenants.push(Tenant {
            iss: iss.into(),
            keys: Arc::clone(&keys),
            _stop: stop,
        });
        Ok(keys)
    }

    /// Every tenant source created so far.
    pub(crate) fn all(&self) -> Vec<Arc<KeySource>> {
        let tenants = self.tenants.read().unwrap_or_else(PoisonError::into_inner);
        tenants.iter().map(|t| Arc::clone(&t.keys)).collect()
    }
}
