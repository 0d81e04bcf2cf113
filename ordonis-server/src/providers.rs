//! The provider registry: which adapters the server knows, and which `base_url`s they may be
//! pointed at.
//!
//! Adding an adapter is one entry in [`registry`] and one in [`PUBLIC_HOSTS`].

use std::sync::Arc;

use ordonis_core::{InvalidInput, Provider};

use crate::errors::StartError;

/// Provider names the API accepts, with the public hosts their `base_url` must be on (a
/// leading `.` means "any subdomain of").
pub const PUBLIC_HOSTS: &[(&str, &str)] = &[("jira", ".atlassian.net"), ("asana", "app.asana.com")];

/// The adapters, as they are: the engine records their metrics itself, so nothing wraps
/// them (a wrapper has twice dropped an ability it did not forward). Each reads at most
/// `max_response_bytes` of one answer.
pub fn registry(max_response_bytes: usize) -> Result<Vec<Arc<dyn Provider>>, StartError> {
    let jira: Arc<dyn Provider> = Arc::new(
        ordonis_jira::JiraProvider::new()
            .map_err(|e| StartError::Adapter {
                provider: "Jira",
                source: Box::new(e),
            })?
            .with_max_response_bytes(max_response_bytes),
    );
    let asana: Arc<dyn Provider> = Arc::new(
        ordonis_asana::AsanaProvider::new()
            .map_err(|e| StartError::Adapter {
                provider: "Asana",
                source: Box::new(e),
            })?
            .with_max_response_bytes(max_response_bytes),
    );
    Ok(vec![jira, asana])
}

/// The one path a `base_url` may carry: Asana's API root (kept; the server adds it to
/// `https://app.asana.com` when it is left out).
const ASANA_API_ROOT: &str = "/api/1.0";

/// Checks a `base_url` for a provider and normalizes it to `scheme://host[:port]` (plus
/// Asana's `/api/1.0` when given): `https`, no credentials or port, on the provider's public
/// hosts, unless `allow_any` (then any `http(s)` URL). A URL with credentials, a path (other
/// than `/`, or `/api/1.0` for Asana), a query or a fragment is refused rather than stripped:
/// the adapters append their API paths to it, so anything extra would silently change where
/// requests (and credentials) go.
pub fn check_base_url(
    provider: &str,
    base_url: &str,
    allow_any: bool,
) -> Result<String, InvalidInput> {
    check_base_url_text(provider, base_url, allow_any)
        .map_err(|why| InvalidInput::new("base_url", why))
}

fn check_base_url_text(provider: &str, base_url: &str, allow_any: bool) -> Result<String, String> {
    let url =
        reqwest::Url::parse(base_url.trim()).map_err(|e| format!("base_url is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("base_url must be an http(s) URL".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("base_url must not carry credentials".to_owned());
    }
    let path = url.path().trim_end_matches('/');
    let api_root = provider == "asana" && path == ASANA_API_ROOT;
    if !(path.is_empty() || api_root) || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "base_url must be only scheme://host[:port] (no path, query or fragment{}); got {:?}",
            if provider == "asana" {
                ", other than /api/1.0"
            } else {
                ""
            },
            base_url.trim()
        ));
    }
    let mut normalized = url.origin().ascii_serialization();
    if api_root {
        normalized.push_str(ASANA_API_ROOT);
    }
    if allow_any {
        return Ok(normalized);
    }
    let Some((_, allowed)) = PUBLIC_HOSTS.iter().find(|(p, _)| *p == provider) else {
        return Err(format!("unknown provider {provider:?}"));
    };
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let host_ok = match allowed.strip_prefix('.') {
        Some(suffix) => host.strip_suffix(&format!(".{suffix}")).is_some_and(|sub| {
            !sub.is_empty() && sub.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }),
        None => host == *allowed,
    };
    if url.scheme() != "https" || url.port().is_some() || !host_ok {
        let shown = match allowed.strip_prefix('.') {
            Some(s) => format!("https://*.{s}"),
            None => format!("https://{allowed}"),
        };
        return Err(format!(
            "base_url for {provider} must be on {shown} (start the server with \
             --allow-any-provider-url to allow other hosts)"
        ));
    }
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the server registers is each adapter with every ability it has: a wrapper that
    /// dropped one (the repair loop, the handshake, the kept headers, the echo form) fails
    /// here instead of silently in production.
    #[test]
    fn the_registry_hands_out_every_ability_of_the_adapters() {
        use ordonis_core::{FieldValue, IntegrationId, ProviderContext, ValueCheck, WorkspaceId};
        let own: Vec<Arc<dyn Provider>> = vec![
            Arc::new(ordonis_jira::JiraProvider::new().unwrap()),
            Arc::new(ordonis_asana::AsanaProvider::new().unwrap()),
        ];
        let registered = registry(ordonis_core::provider_http::DEFAULT_MAX_RESPONSE_BYTES).unwrap();
        assert_eq!(registered.len(), own.len());
        let ctx = ProviderContext {
            integration_id: IntegrationId::new(),
            workspace_id: WorkspaceId::new("ws").unwrap(),
            base_url: "http://127.0.0.1:9".into(),
            secrets: ordonis_core::IntegrationSecrets::default(),
            options: serde_json::Value::Null,
            scope: serde_json::Value::Null,
        };
        let description = FieldValue::Description("_a_\n\n### b".into());
        for (reg, own) in registered.iter().zip(&own) {
            assert_eq!(reg.kind(), own.kind());
            assert!(
                reg.repair().is_some(),
                "{}: repair loop dropped",
                reg.kind()
            );
            assert_eq!(reg.capabilities(), own.capabilities(), "{}", reg.kind());
            let check = reg.check_value(&ctx, &description);
            assert!(
                matches!(check, ValueCheck::AcceptAs(_)),
                "{}: echo form dropped",
                reg.kind()
            );
            assert_eq!(check, own.check_value(&ctx, &description));
        }
        assert!(registered[1].capabilities().webhook_handshake);
    }

    #[test]
    fn public_hosts_only_unless_allowed() {
        assert!(check_base_url("jira", "https://acme.atlassian.net", false).is_ok());
        assert!(check_base_url("jira", "https://acme.atlassian.net/", false).is_ok());
        assert!(check_base_url("asana", "https://app.asana.com", false).is_ok());
        for bad in [
            "http://acme.atlassian.net",
            "https://atlassian.net",
            "https://acme.atlassian.net.evil.com",
            "https://evil.com/.atlassian.net",
            "https://acme.atlassian.net:8443",
            "https://user:pw@acme.atlassian.net",
            "https://169.254.169.254",
            "http://127.0.0.1:5432",
            "https://a.b.atlassian.net",
        ] {
            assert!(check_base_url("jira", bad, false).is_err(), "{bad}");
        }
        assert!(check_base_url("asana", "https://evil.asana.com", false).is_err());
        assert!(check_base_url("jira", "http://127.0.0.1:9", true).is_ok());
        assert!(check_base_url("jira", "file:///etc/passwd", true).is_err());
    }

    #[test]
    fn normalized_to_scheme_host_and_port() {
        let ok = |p, u, any| check_base_url(p, u, any);
        assert_eq!(
            ok("jira", " HTTPS://Acme.Atlassian.NET/ ", false).as_deref(),
            Ok("https://acme.atlassian.net")
        );
        assert_eq!(
            ok("jira", "http://127.0.0.1:9/", true).as_deref(),
            Ok("http://127.0.0.1:9")
        );
        assert_eq!(
            ok("asana", "https://app.asana.com/api/1.0/", false).as_deref(),
            Ok("https://app.asana.com/api/1.0")
        );
        for bad in [
            "https://acme.atlassian.net/wiki",
            "https://acme.atlassian.net/rest/api/3",
            "https://acme.atlassian.net/?x=1",
            "https://acme.atlassian.net/?",
            "https://acme.atlassian.net/#frag",
            "https://acme.atlassian.net/api/1.0",
        ] {
            let e = ok("jira", bad, false).unwrap_err().to_string();
            assert!(e.contains("scheme://host"), "{bad}: {e}");
            assert!(ok("jira", bad, true).is_err(), "{bad} with allow_any");
        }
        assert!(ok("jira", "http://user@127.0.0.1:9", true).is_err());
        assert!(ok("asana", "https://app.asana.com/api/2.0", false).is_err());
    }
}
