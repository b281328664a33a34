//! The HTTP side: one introspection call, and finding the endpoint by
//! discovery.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header;
use reqwest::Url;
use serde::Deserialize;

use super::{ClientAuth, Introspection};
use crate::error::FetchError;
use crate::jwks::{
    discovery_url, jwks_uri_from_discovery, read_json_body, redirect_refusal, request_error,
    single_use_body,
};

/// Posts `token` to `endpoint` and returns the body of a 200 JSON answer,
/// at most `settings.max_response_bytes` of it. The caller bounds the time.
pub(crate) async fn call(
    client: &reqwest::Client,
    endpoint: &Url,
    settings: &Introspection,
    token: &str,
) -> Result<Vec<u8>, FetchError> {
    let mut req = client
        .post(endpoint.clone())
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    let body = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", token)
            .append_pair("token_type_hint", "access_token");
        match settings.auth {
            ClientAuth::Basic => {
                // SECURITY: marked sensitive, so HTTP/2 never indexes it and
                // debug output of the request hides it.
                let mut value = http::HeaderValue::from_str(&basic(settings)).map_err(|_| {
                    FetchError::Request {
                        reason: "client credentials do not fit a header".into(),
                    }
                })?;
                value.set_sensitive(true);
                req = req.header(header::AUTHORIZATION, value);
            }
            ClientAuth::Post => {
                form.append_pair("client_id", &settings.client_id)
                    .append_pair("client_secret", &settings.client_secret);
            }
        }
        form.finish()
    };
    // SECURITY: the token and the client credentials go to `endpoint` and
    // nowhere else, whatever the client's redirect policy.
    let res = req
        .body(single_use_body(body))
        .send()
        .await
        .map_err(request_error)?;
    if let Some(reason) = redirect_refusal(endpoint, &res) {
        return Err(FetchError::Request { reason });
    }
    read_json_body(res, settings.max_response_bytes, &["application/json"]).await
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn basic(settings: &Introspection) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!(
        "{}:{}",
        encode(&settings.client_id),
        encode(&settings.client_secret)
    );
    format!("Basic {}", STANDARD.encode(pair))
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    #[serde(default)]
    introspection_endpoint: Option<String>,
}

/// The `introspection_endpoint` of `issuer`'s discovery document, after
/// checking that the document names exactly this issuer.
pub(crate) async fn discover(
    client: &reqwest::Client,
    issuer: &str,
    max_body: usize,
    allow_http: bool,
) -> Result<Url, FetchError> {
    let res = client
        .get(discovery_url(issuer))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(request_error)?;
    let body = read_json_body(res, max_body, &["application/json"]).await?;
    let doc: Discovery = serde_json::from_slice(&body).map_err(|e| FetchError::Parse {
        reason: format!("not a discovery document: {e}"),
    })?;
    // SECURITY (mix-up): the document must name exactly our issuer, as for
    // `jwks_uri`: the client secret goes to the endpoint it names.
    if doc.issuer != issuer {
        return Err(FetchError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: doc.issuer,
        });
    }
    let raw = doc
        .introspection_endpoint
        .ok_or_else(|| FetchError::Parse {
            reason: "the discovery document names no introspection_endpoint: configure one".into(),
        })?;
    jwks_uri_from_discovery(&raw, issuer, allow_http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        let s = Introspection::new("a:b", "p w&");
        let header = basic(&s);
        let decoded = STANDARD
            .decode(header.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "a%3Ab:p+w%26");
    }
}
