//! Where the gateway sends a request: the upstream's base URL joined with
//! the request's path and query, refused when the path could leave the
//! base path. Pure and small, so that the fuzz target `gateway_path`
//! includes this very file.
//!
//! Refused (the gateway answers 400):
//! - a path that does not start with `/`;
//! - `\` and `;` anywhere in the path: the URL parser treats `\` as `/` for
//!   http(s), and `;` starts path parameters that some servers strip before
//!   resolving (`/..;/admin`);
//! - in any segment, once or repeatedly percent-decoded: `/`, `\`, `;`, a
//!   control character, or a whole segment `.` or `..` (`%2e%2e`, `%2E.`,
//!   `%252e%252e`, `%2f`, `%5c`, …); a segment still changing after
//!   [`MAX_DECODES`] decodings is refused too.
//!
//! Percent-encoded characters that are none of these pass unchanged
//! (`/a/b%20c` reaches the upstream as `/a/b%20c`).

use percent_encoding::percent_decode;
use url::Url;

/// How many percent-decodings a segment may need before it stops changing.
pub const MAX_DECODES: usize = 4;

/// Why a request path is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not an origin-form path (`/…`).
    NotAbsolute,
    /// A `\`, `;`, encoded `/` or `\`, control character or dot segment.
    Unsafe,
    /// The joined URL left the upstream's base (a safety net: the checks
    /// above should make this unreachable).
    OutsideBase,
}

/// The upstream's base URL, checked once at start-up.
#[derive(Debug, Clone)]
pub struct Base {
    url: Url,
    /// The base path without its trailing `/` (`""` for the root).
    prefix: String,
}

impl Base {
    /// Parses `upstream` (`http://host:port/base`): an http or https URL
    /// without query, fragment or credentials.
    pub fn parse(upstream: &str) -> Result<Self, String> {
        let url = Url::parse(upstream).map_err(|e| format!("{upstream:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{upstream:?}: not an http(s) URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{upstream:?}: has a query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{upstream:?}: has credentials"));
        }
        let prefix = url.path().trim_end_matches('/').to_owned();
        Ok(Self { url, prefix })
    }

    /// The base path without its trailing `/` (`""` for the root).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The URL to forward `path_and_query` (a request target in origin
    /// form, `/path?query`) to.
    pub fn join(&self, path_and_query: &str) -> Result<Url, Refused> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        if !path.starts_with('/') {
            return Err(Refused::NotAbsolute);
        }
        // SECURITY: `\` is a path separator to the URL parser (WHATWG, for
        // http and https) and `;` starts path parameters that servers such
        // as Tomcat strip before resolving `..`: either lets a request climb
        // out of the base path.
        if path.contains(['\\', ';']) || !path.split('/').all(safe_segment) {
            return Err(Refused::Unsafe);
        }
        let mut url = self.url.clone();
        url.set_path(&format!("{}{path}", self.prefix));
        url.set_query(query);
        // SECURITY: defence in depth: whatever the URL parser made of the
        // path, it must still be under the base, on the same origin.
        if url.origin() != self.url.origin() || !under(url.path(), &self.prefix) {
            return Err(Refused::OutsideBase);
        }
        Ok(url)
    }
}

/// Whether `path` is `prefix` or below it.
pub fn under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Whether one raw path segment, decoded up to [`MAX_DECODES`] times, is
/// never a dot segment nor hides a separator or control character.
fn safe_segment(segment: &str) -> bool {
    let mut current: Vec<u8> = segment.as_bytes().to_vec();
    for _ in 0..=MAX_DECODES {
        if current == b"." || current == b".." {
            return false;
        }
        if current
            .iter()
            .any(|&b| b == b'/' || b == b'\\' || b == b';' || b.is_ascii_control())
        {
            return false;
        }
        let decoded: Vec<u8> = percent_decode(&current).collect();
        if decoded == current {
            return true;
        }
        current = decoded;
    }
    // Still changing after MAX_DECODES decodings: nobody needs that.
    false
}
