//! The provider registry: which adapters the server knows, and which `base_url`s they may be
//! pointed at.
//!
//! Adding an adapter is one entry in [`registry`] and one in [`PUBLIC_HOSTS`].

use std::sync::Arc;

use ordonis_core::Provider;

use crate::metrics::{Instrumented, Metrics};

/// Provider names the API accepts, with the public hosts their `base_url` must be on (a
/// leading `.` means "any subdomain of").
pub const PUBLIC_HOSTS: &[(&str, &str)] = &[("jira", ".atlassian.net"), ("asana", "app.asana.com")];

/// The adapters, each wrapped for metrics.
pub fn registry(metrics: &Arc<Metrics>) -> Result<Vec<Arc<dyn Provider>>, String> {
    let jira: Arc<dyn Provider> =
        Arc::new(ordonis_jira::JiraProvider::new().map_err(|e| format!("Jira adapter: {e}"))?);
    let asana: Arc<dyn Provider> =
        Arc::new(ordonis_asana::AsanaProvider::new().map_err(|e| format!("Asana adapter: {e}"))?);
    let raw: Vec<Arc<dyn Provider>> = vec![jira, asana];
    Ok(raw
        .into_iter()
        .map(|p| Arc::new(Instrumented::new(p, metrics.clone())) as Arc<dyn Provider>)
        .collect())
}

/// Checks a `base_url` for a provider: `https`, no credentials or port, on the provider's
/// public hosts, unless `allow_any` (then any `http(s)` URL).
pub fn check_base_url(provider: &str, base_url: &str, allow_any: bool) -> Result<String, String> {
    let url =
        reqwest::Url::parse(base_url.trim()).map_err(|e| format!("base_url is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("base_url must be an http(s) URL".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("base_url must not carry credentials".to_owned());
    }
    let normalized = base_url.trim().trim_end_matches('/').to_owned();
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
}
