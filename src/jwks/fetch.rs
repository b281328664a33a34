//! HTTP fetching of JWKS and discovery documents, with every limit enforced
//! before parsing.

use std::time::Duration;

use http::{StatusCode, header};
use reqwest::Url;
use serde::Deserialize;

use super::FetchError;
use super::keyset::{AlgSet, KeySet, Origin};

/// Limits and policy for every HTTP fetch of one verifier.
#[derive(Debug, Clone)]
pub(crate) struct FetchSettings {
    pub(crate) timeout: Duration,
    pub(crate) max_body: usize,
    pub(crate) max_keys: usize,
    pub(crate) allow_http: bool,
    pub(crate) follow_redirects: bool,
}

impl FetchSettings {
    pub(crate) fn client(&self) -> Result<reqwest::Client, FetchError> {
        let allow_http = self.allow_http;
        let redirect = if self.follow_redirects {
            reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 3 {
                    attempt.error("too many redirects")
                } else if check_url(attempt.url(), allow_http).is_err() {
                    attempt.error("redirect to an insecure URL")
                } else {
                    attempt.follow()
                }
            })
        } else {
            reqwest::redirect::Policy::none()
        };
        reqwest::Client::builder()
            .redirect(redirect)
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .user_agent(concat!("authlayer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Request {
                reason: format!("cannot build HTTP client: {e}"),
            })
    }
}

/// SECURITY (key source integrity): keys fetched over plain HTTP can be
/// replaced by anyone on the path, so `http` is only accepted for loopback
/// hosts unless explicitly allowed.
pub(crate) fn check_url(url: &Url, allow_http: bool) -> Result<(), String> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_http => Ok(()),
        "http" => {
            if is_loopback(url) {
                Ok(())
            } else {
                Err(
                    "plain http is only allowed for loopback hosts (see allow_insecure_http)"
                        .into(),
                )
            }
        }
        other => Err(format!("unsupported scheme {other:?}")),
    }
}

/// Whether `url` names this machine: 127.0.0.0/8, `::1` or `localhost`.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(crate) fn parse_url(raw: &str, allow_http: bool) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    check_url(&url, allow_http)?;
    Ok(url)
}

/// The discovery URL for an issuer (OIDC Discovery 1.0 §4).
pub(crate) fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// What a successful JWKS fetch brought.
pub(crate) enum Fetched {
    /// A new key set, with the response's `ETag` and `max-age`.
    Keys {
        set: KeySet,
        etag: Option<String>,
        max_age: Option<Duration>,
    },
    /// 304: the current set is still good.
    NotModified { max_age: Option<Duration> },
}

pub(crate) async fn fetch_jwks(
    client: &reqwest::Client,
    settings: &FetchSettings,
    url: &Url,
    etag: Option<&str>,
    allowed: AlgSet,
) -> Result<Fetched, FetchError> {
    let work = async {
        let mut req = client
            .get(url.clone())
            .header(header::ACCEPT, "application/jwk-set+json, application/json");
        if let Some(etag) = etag {
            req = req.header(header::IF_NONE_MATCH, etag);
        }
        let res = req.send().await.map_err(request_error)?;
        let max_age = max_age(res.headers());
        if res.status() == StatusCode::NOT_MODIFIED && etag.is_some() {
            return Ok(Fetched::NotModified { max_age });
        }
        let etag = res
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_json_body(
            res,
            settings.max_body,
            &["application/json", "application/jwk-set+json"],
        )
        .await?;
        let set = KeySet::from_json(&body, allowed, settings.max_keys, Origin::Remote)?;
        Ok(Fetched::Keys { set, etag, max_age })
    };
    tokio::time::timeout(settings.timeout, work)
        .await
        .map_err(|_| FetchError::Timeout {
            after: settings.timeout,
        })?
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// Fetches the discovery document and returns its `jwks_uri`, after checking
/// that it names exactly the configured issuer.
pub(crate) async fn discover(
    client: &reqwest::Client,
    settings: &FetchSettings,
    issuer: &str,
) -> Result<Url, FetchError> {
    let url = discovery_url(issuer);
    let work = async {
        let res = client
            .get(&url)
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(request_error)?;
        let body = read_json_body(res, settings.max_body, &["application/json"]).await?;
        let doc: Discovery = serde_json::from_slice(&body).map_err(|e| FetchError::Parse {
            reason: format!("not a discovery document: {e}"),
        })?;
        // SECURITY (OIDC Discovery §4.3, mix-up attacks): the document must
        // name exactly the issuer we were configured with.
        if doc.issuer != issuer {
            return Err(FetchError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: doc.issuer,
            });
        }
        jwks_uri_from_discovery(&doc.jwks_uri, issuer, settings.allow_http)
    };
    tokio::time::timeout(settings.timeout, work)
        .await
        .map_err(|_| FetchError::Timeout {
            after: settings.timeout,
        })?
}

/// The `jwks_uri` (or another endpoint) a discovery document for `issuer`
/// names, if the URL policy lets us use it.
pub(crate) fn jwks_uri_from_discovery(
    raw: &str,
    issuer: &str,
    allow_http: bool,
) -> Result<Url, FetchError> {
    let jwks_uri =
        parse_url(raw, allow_http).map_err(|reason| FetchError::InsecureUrl { reason })?;
    // SECURITY (SSRF, key injection): plain http is allowed for loopback
    // hosts because the operator configured them; a remote document naming
    // one is trusted with that only if the issuer itself is on loopback.
    // Otherwise it could point us at a local port of its choice.
    if jwks_uri.scheme() == "http"
        && !allow_http
        && !Url::parse(issuer).is_ok_and(|u| is_loopback(&u))
    {
        return Err(FetchError::InsecureUrl {
            reason: "a plain-http loopback jwks_uri is only accepted from a loopback issuer".into(),
        });
    }
    Ok(jwks_uri)
}

/// A request body reqwest cannot send twice, for requests that carry a
/// token or a client secret.
///
/// SECURITY (credentials sent on): the caller may supply a client that
/// follows redirects, and a redirect policy belongs to the client, not the
/// request. Such a client resends a body it can replay on a 307/308 to
/// wherever `Location` points; a body it cannot replay makes it hand the
/// 307/308 back instead. (On 301/302/303 it follows with a `GET` that
/// carries no body and, to another origin, no `Authorization`.)
pub(crate) fn single_use_body(form: String) -> reqwest::Body {
    reqwest::Body::wrap(form)
}

/// Why `res` is not the answer of `requested` itself: a redirect (3xx),
/// or an answer from another URL because the client followed one.
///
/// SECURITY: redirects are never honoured where credentials travel; the
/// endpoint is the configured URL, and an answer from anywhere else is
/// refused, whatever the client's redirect policy.
pub(crate) fn redirect_refusal(requested: &Url, res: &reqwest::Response) -> Option<String> {
    if res.status().is_redirection() {
        return Some(format!(
            "the endpoint answered with a redirect (HTTP {}); redirects are never followed where credentials are sent",
            res.status().as_u16()
        ));
    }
    (!same_endpoint(requested, res.url())).then(|| {
        "the HTTP client followed a redirect away from the endpoint; redirects are refused where credentials are sent".to_owned()
    })
}

/// Whether `answered` (a response's URL) is `requested`, which reqwest
/// sends without its user info (moved into a header) and fragment.
fn same_endpoint(requested: &Url, answered: &Url) -> bool {
    let mut expected = requested.clone();
    let _ = expected.set_username("");
    let _ = expected.set_password(None);
    expected.set_fragment(None);
    *answered == expected
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(request_error)`
pub(crate) fn request_error(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Request {
            reason: "timed out".into(),
        };
    }
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    FetchError::Request { reason }
}

/// Reads a 200 response with a JSON content type, never buffering more than
/// `limit` bytes.
pub(crate) async fn read_json_body(
    mut res: reqwest::Response,
    limit: usize,
    types: &[&str],
) -> Result<Vec<u8>, FetchError> {
    if res.status() != StatusCode::OK {
        return Err(FetchError::Status {
            status: res.status().as_u16(),
        });
    }
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !types.contains(&essence.as_str()) {
        return Err(FetchError::ContentType {
            found: content_type.chars().take(64).collect(),
        });
    }
    if res.content_length().is_some_and(|n| n > limit as u64) {
        return Err(FetchError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(request_error)? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Cache-Control: max-age` of a response; `no-cache`/`no-store` count as 0.
fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            if directive.eq_ignore_ascii_case("no-cache")
                || directive.eq_ignore_ascii_case("no-store")
            {
                return Some(Duration::ZERO);
            }
            if let Some((name, secs)) = directive.split_once('=')
                && name.trim().eq_ignore_ascii_case("max-age")
                && let Ok(secs) = secs.trim().trim_matches('"').parse::<u64>()
            {
                found = Some(Duration::from_secs(secs));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_from_another_url_is_a_followed_redirect() {
        let url = |s: &str| Url::parse(s).unwrap();
        let requested = url("https://client:pw@id.example/token?x=1#frag");
        assert!(same_endpoint(
            &requested,
            &url("https://id.example/token?x=1")
        ));
        for elsewhere in [
            "https://id.example/other?x=1",
            "https://id.example/token",
            "https://id.example:8443/token?x=1",
            "http://id.example/token?x=1",
            "https://evil.example/token?x=1",
        ] {
            assert!(!same_endpoint(&requested, &url(elsewhere)), "{elsewhere}");
        }
    }

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for v in values {
            h.append(header::CACHE_CONTROL, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age(&headers(&["public, max-age=600"])),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age(&headers(&["no-store"])), Some(Duration::ZERO));
        assert_eq!(max_age(&headers(&["max-age=abc"])), None);
        assert_eq!(max_age(&headers(&[])), None);
    }

    #[test]
    fn plain_http_is_only_for_loopback() {
        assert!(parse_url("http://127.0.0.1:4000/jwks", false).is_ok());
        assert!(parse_url("http://localhost/jwks", false).is_ok());
        assert!(parse_url("http://[::1]/jwks", false).is_ok());
        assert!(parse_url("https://id.example/jwks", false).is_ok());
        assert!(parse_url("http://id.example/jwks", false).is_err());
        assert!(parse_url("http://10.0.0.1/jwks", false).is_err());
        assert!(parse_url("http://id.example/jwks", true).is_ok());
        assert!(parse_url("file:///etc/passwd", true).is_err());
        assert!(parse_url("not a url", true).is_err());
    }

    #[test]
    fn loopback_jwks_uri_is_taken_only_from_a_loopback_issuer() {
        let local = "http://127.0.0.1:9/jwks";
        assert!(matches!(
            jwks_uri_from_discovery(local, "https://id.example", false),
            Err(FetchError::InsecureUrl { .. })
        ));
        assert!(
            jwks_uri_from_discovery("http://localhost/jwks", "https://id.example", false).is_err()
        );
        assert!(jwks_uri_from_discovery(local, "http://127.0.0.1:4000", false).is_ok());
        assert!(jwks_uri_from_discovery(local, "http://localhost:4000/realms/a", false).is_ok());
        assert!(
            jwks_uri_from_discovery("https://keys.example/jwks", "https://id.example", false)
                .is_ok()
        );
        // The operator allowed plain http everywhere: the rule is theirs.
        assert!(jwks_uri_from_discovery(local, "https://id.example", true).is_ok());
        assert!(
            jwks_uri_from_discovery("http://10.0.0.1/jwks", "http://127.0.0.1:4000", false)
                .is_err()
        );
    }

    #[test]
    fn discovery_url_appends_well_known() {
        assert_eq!(
            discovery_url("https://id.example/realms/a/"),
            "https://id.example/realms/a/.well-known/openid-configuration"
        );
    }
}
