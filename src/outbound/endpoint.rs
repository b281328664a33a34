//! One OAuth 2.0 token endpoint, as a confidential client calls it
//! (RFC 6749 §2.3.1 `client_secret_basic`, §5 responses): shared by the
//! client-credentials source and the token-exchange client.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;
use serde::Deserialize;
use tokio::time::Instant;

use super::OutboundError;
use super::dpop::{DPOP, DpopKey};
use crate::error::{BuildError, FetchError};
use crate::layer::AccessToken;

/// Lifetimes beyond a year are read as a year.
const MAX_LIFETIME_SECS: u64 = 365 * 24 * 60 * 60;

/// SECURITY (DoS): a token response is a few hundred bytes; a larger body is
/// refused before it is buffered.
const MAX_BODY: usize = 64 * 1024;

/// How the builder of an endpoint spells the settings it is made of, for
/// the [`BuildError`] naming the one to fix.
pub(crate) struct Names {
    pub(crate) token_url: &'static str,
    pub(crate) client_id: &'static str,
    pub(crate) timeout: &'static str,
}

/// Where and as whom to ask for tokens.
#[derive(Clone)]
pub(crate) struct Endpoint {
    url: Url,
    /// `Basic base64(urlencode(id):urlencode(secret))`, computed once.
    basic: http::HeaderValue,
    client_id: String,
    http: reqwest::Client,
    timeout: Duration,
    /// Tokens bound to this key: every request carries a proof.
    dpop: Option<DpopKey>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SECURITY: the client secret never reaches a log line.
        f.debug_struct("Endpoint")
            .field("url", &self.url.as_str())
            .field("client_id", &self.client_id)
            .field("timeout", &self.timeout)
            .field("dpop", &self.dpop)
            .finish_non_exhaustive()
    }
}

/// A token the endpoint issued, and how long it lives from `requested_at`.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) token: AccessToken,
    /// `expires_in`, if the endpoint said.
    pub(crate) lifetime: Option<Duration>,
    /// When the request was sent: lifetimes count from here (conservative).
    pub(crate) requested_at: Instant,
}

#[derive(Deserialize)]
struct Success {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    issued_token_type: Option<String>,
}

#[derive(Deserialize)]
struct Failure {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

fn form(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

impl Endpoint {
    /// Checks the settings (named as `names` spells them) and builds the
    /// HTTP client, if none is given.
    pub(crate) fn new(
        names: &Names,
        url: &str,
        client_id: &str,
        secret: &str,
        http: Option<reqwest::Client>,
        timeout: Duration,
        allow_http: bool,
    ) -> Result<Self, BuildError> {
        // SECURITY: the client secret and the tokens travel here; plain http
        // only to this machine (unless explicitly allowed), as for key URLs.
        let parsed = crate::jwks::parse_url(url, allow_http).map_err(|reason| BuildError::Url {
            setting: names.token_url,
            url: url.to_owned(),
            reason,
        })?;
        if client_id.is_empty() {
            return Err(BuildError::setting_error(
                names.client_id,
                "must not be empty",
            ));
        }
        if timeout.is_zero() {
            return Err(BuildError::setting_error(names.timeout, "must be positive"));
        }
        let credentials = STANDARD.encode(format!("{}:{}", form(client_id), form(secret)));
        let mut basic = http::HeaderValue::try_from(format!("Basic {credentials}"))
            .map_err(|_| BuildError::setting_error(names.client_id, "cannot form a header"))?;
        basic.set_sensitive(true);
        let http = match http {
            Some(client) => client,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("authlayer/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| BuildError::Fetch {
                    url: url.to_owned(),
                    cause: FetchError::Request {
                        reason: format!("cannot build the HTTP client: {e}"),
                    },
                })?,
        };
        let url = parsed;
        Ok(Self {
            url,
            basic,
            client_id: client_id.to_owned(),
            http,
            timeout,
            dpop: None,
        })
    }

    /// Asks for tokens bound to `key` (RFC 9449 §5).
    pub(crate) fn with_dpop(mut self, key: Option<DpopKey>) -> Self {
        self.dpop = key;
        self
    }

    /// The key the tokens are bound to, if they are.
    pub(crate) fn dpop(&self) -> Option<&DpopKey> {
        self.dpop.as_ref()
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// POSTs `params` as a form and reads the token response, within the
    /// timeout. With a DPoP key, the request carries a proof, and a
    /// `use_dpop_nonce` refusal is answered once with the nonce it gave.
    pub(crate) async fn request(&self, params: &[(&str, &str)]) -> Result<Issued, OutboundError> {
        let requested_at = Instant::now();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let (mut status, mut bytes, new_nonce) = self.send(&body).await?;
        if new_nonce
            && serde_json::from_slice::<Failure>(&bytes).is_ok_and(|f| f.error == "use_dpop_nonce")
        {
            // RFC 9449 §8: the server wants a nonce in the proof; it gave
            // one (remembered by `send`). Once only: a server that refuses
            // its own nonce again is not asked a third time.
            (status, bytes, _) = self.send(&body).await?;
        }
        self.read(status, &bytes, requested_at)
    }

    /// One POST of the form `body`, within the timeout: the status, the
    /// body, and whether it is a 400 with a new DPoP nonce.
    async fn send(
        &self,
        body: &str,
    ) -> Result<(reqwest::StatusCode, Vec<u8>, bool), OutboundError> {
        let proof = match &self.dpop {
            // htm POST, htu the token endpoint (RFC 9449 §5).
            Some(key) => Some(key.proof(&http::Method::POST, self.url.as_str(), None)?),
            None => None,
        };
        let work = async {
            let mut request = self
                .http
                .post(self.url.clone())
                .header(AUTHORIZATION, self.basic.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(ACCEPT, "application/json");
            if let Some(proof) = proof {
                request = request.header(DPOP, proof);
            }
            let mut res = request
                // SECURITY: the client secret and the tokens in the form go
                // to the configured URL only, whatever the client's redirect
                // policy.
                .body(crate::jwks::single_use_body(body.to_owned()))
                .send()
                .await
                .map_err(|e| OutboundError::Unavailable {
                    reason: describe(&e),
                })?;
            if let Some(reason) = crate::jwks::redirect_refusal(&self.url, &res) {
                return Err(OutboundError::InvalidResponse { reason });
            }
            let status = res.status();
            // Any answer may carry the nonce for the next proof.
            let new_nonce = self.dpop.as_ref().is_some_and(|key| {
                key.observe_response(self.url.as_str(), status, res.headers())
                    && status == reqwest::StatusCode::BAD_REQUEST
            });
            if res.content_length().is_some_and(|n| n > MAX_BODY as u64) {
                return Err(OutboundError::InvalidResponse {
                    reason: format!("body larger than {MAX_BODY} bytes"),
                });
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = res.chunk().await.map_err(|e| OutboundError::Unavailable {
                reason: describe(&e),
            })? {
                if bytes.len() + chunk.len() > MAX_BODY {
                    return Err(OutboundError::InvalidResponse {
                        reason: format!("body larger than {MAX_BODY} bytes"),
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok((status, bytes, new_nonce))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| OutboundError::Timeout {
                after: self.timeout,
            })?
    }

    /// The token response in `bytes`, answered with `status`.
    fn read(
        &self,
        status: reqwest::StatusCode,
        bytes: &[u8],
        requested_at: Instant,
    ) -> Result<Issued, OutboundError> {
        if status.is_success() {
            let ok: Success =
                serde_json::from_slice(bytes).map_err(|e| OutboundError::InvalidResponse {
                    reason: format!("not a token response: {e}"),
                })?;
            // SECURITY (RFC 9449 §5): a server that ignored the proof issued
            // a bearer token; using it would silently drop the binding the
            // client asked for, so it is refused. Without a key, a bound
            // token is useless to this client (it cannot sign proofs).
            let expected = if self.dpop.is_some() {
                "DPoP"
            } else {
                "Bearer"
            };
            if !ok.token_type.eq_ignore_ascii_case(expected) {
                let hint = if self.dpop.is_some() {
                    " (the token endpoint ignored the DPoP proof and issued an unbound token)"
                } else {
                    ""
                };
                return Err(OutboundError::InvalidResponse {
                    reason: format!(
                        "token_type {:?} is not {expected}{hint}",
                        shorten(&ok.token_type)
                    ),
                });
            }
            if ok
                .issued_token_type
                .as_deref()
                .is_some_and(|t| t != super::TOKEN_TYPE_ACCESS)
            {
                return Err(OutboundError::InvalidResponse {
                    reason: "issued_token_type is not an access token".into(),
                });
            }
            let token = AccessToken::from(ok.access_token);
            // SECURITY: a token that cannot be a header value would fail on
            // every request; refuse it here, once.
            if token.as_str().is_empty() || token.bearer_header().is_none() {
                return Err(OutboundError::InvalidResponse {
                    reason: "access_token is empty or not header-safe".into(),
                });
            }
            return Ok(Issued {
                token,
                // SECURITY (hostile endpoint): an absurd lifetime must not
                // overflow the clock arithmetic (a panic) downstream.
                lifetime: ok
                    .expires_in
                    .map(|secs| Duration::from_secs(secs.min(MAX_LIFETIME_SECS))),
                requested_at,
            });
        }
        match serde_json::from_slice::<Failure>(bytes) {
            // 5xx: the server's trouble, whatever the body says.
            Ok(_) | Err(_) if status.is_server_error() => Err(OutboundError::Unavailable {
                reason: format!("HTTP status {}", status.as_u16()),
            }),
            Ok(failure) => Err(OutboundError::Refused {
                status: status.as_u16(),
                code: shorten(&failure.error),
                description: failure.error_description.as_deref().map(shorten),
            }),
            Err(_) => Err(OutboundError::InvalidResponse {
                reason: format!("HTTP status {} without an OAuth error", status.as_u16()),
            }),
        }
    }
}

/// At most 200 characters, control characters escaped: what the endpoint
/// said may reach a log line.
fn shorten(text: &str) -> String {
    text.chars()
        .take(200)
        .flat_map(char::escape_default)
        .collect()
}

fn describe(e: &reqwest::Error) -> String {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: Names = Names {
        token_url: "test.token_url",
        client_id: "test.client_id",
        timeout: "test.timeout",
    };

    #[test]
    fn remote_plain_http_endpoint_is_refused() {
        let e = Endpoint::new(
            &NAMES,
            "http://id.example/token",
            "c",
            "s",
            None,
            Duration::from_secs(1),
            false,
        )
        .unwrap_err();
        assert!(
            matches!(&e, BuildError::Url { setting: "test.token_url", url, .. } if url == "http://id.example/token"),
            "{e}"
        );
        assert!(
            Endpoint::new(
                &NAMES,
                "http://id.example/token",
                "c",
                "s",
                None,
                Duration::from_secs(1),
                true
            )
            .is_ok(),
            "allowed explicitly"
        );
        assert!(
            Endpoint::new(
                &NAMES,
                "http://127.0.0.1:1/token",
                "c",
                "s",
                None,
                Duration::from_secs(1),
                false
            )
            .is_ok()
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let e = Endpoint::new(
            &NAMES,
            "https://id.example/token",
            "c",
            "hunter2",
            None,
            Duration::from_secs(1),
            false,
        )
        .unwrap();
        let shown = format!("{e:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("aHVudGVyMg"),
            "{shown}"
        );
    }

    #[test]
    fn credentials_are_form_encoded_before_base64() {
        let e = Endpoint::new(
            &NAMES,
            "https://id.example/token",
            "a:b",
            "p w",
            None,
            Duration::from_secs(1),
            false,
        )
        .unwrap();
        let expected = format!("Basic {}", STANDARD.encode("a%3Ab:p+w"));
        assert_eq!(e.basic, expected.as_str());
    }

    #[test]
    fn descriptions_are_escaped_and_bounded() {
        assert_eq!(shorten("a\r\nb"), "a\\r\\nb");
        assert_eq!(shorten(&"x".repeat(500)).len(), 200);
    }
}
