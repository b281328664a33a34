//! Request parameters: form-encoded (OAuth's encoding) or JSON (convenient
//! with curl).

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use super::error::{OAuthError, shorten};

/// A request's parameters, each given at most once and never empty.
#[derive(Default)]
pub(super) struct Params(HashMap<String, String>);

const MAX_PARAMS: usize = 32;

impl Params {
    pub(super) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let mut params = HashMap::new();
        let mut add = |name: String, value: String| {
            if params.len() >= MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            // RFC 6749 §3.1: a parameter without a value counts as absent, and
            // none may be given twice.
            if value.is_empty() {
                return Ok(());
            }
            if params.insert(name.clone(), value).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {:?} is given more than once",
                    shorten(&name)
                )));
            }
            Ok(())
        };
        if body.is_empty() {
            return Ok(Self(params));
        }
        match content_type.as_str() {
            "application/json" => {
                let object: Map<String, Value> = serde_json::from_slice(body).map_err(|_| {
                    OAuthError::invalid_request("the body is not a JSON object of strings")
                })?;
                for (name, value) in object {
                    let Value::String(value) = value else {
                        return Err(OAuthError::invalid_request(format!(
                            "parameter {:?} must be a string",
                            shorten(&name)
                        )));
                    };
                    add(name, value)?;
                }
            }
            "application/x-www-form-urlencoded" => {
                for (name, value) in url::form_urlencoded::parse(body) {
                    add(name.into_owned(), value.into_owned())?;
                }
            }
            _ => {
                return Err(OAuthError::invalid_request(
                    "send parameters as application/x-www-form-urlencoded or application/json",
                ));
            }
        }
        Ok(Self(params))
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub(super) fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name:?}")))
    }
}
