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
//! - an empty segment (`//host/x`, which a backend may read as a host, and
//!   `/a//b`); only the last segment may be empty (`/`, `/orders/`);
//! - a `%` not followed by two hex digits (`%u002e`, IIS's escape, `a%`);
//! - in any segment, once or repeatedly percent-decoded: `/`, `\`, `;`, a
//!   control character, a byte that is not ASCII (fullwidth `．．` becomes
//!   `..` on a backend that normalises to NFKC), bytes that are not UTF-8
//!   (the overlong `%c0%ae` is `.` to lax decoders), a `%u` escape, or a
//!   segment made only of dots and spaces (`..`, `%2e%2e`, `%252e%252e`,
//!   `...`, `..%20`: Windows servers trim trailing dots and spaces); a
//!   segment still changing after [`MAX_DECODES`] decodings is refused too.
//!
//! Other percent-encoded characters pass unchanged (`/a/b%20c/%41` reaches
//! the upstream as `/a/b%20c/%41`, `/100%25` as `/100%25`).

use percent_encoding::percent_decode;
use url::Url;

/// How many percent-decodings a segment may need before it stops changing.
pub const MAX_DECODES: usize = 4;

/// Why a request path is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not an origin-form path (`/…`).
    NotAbsolute,
    /// A `\`, `;`, empty segment, bad `%` escape, or a segment that
    /// (decoded) holds a separator, a control or non-ASCII character, or
    /// only dots and spaces.
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
    /// without query, fragment or credentials. The error names `upstream`
    /// with its credentials, if any, replaced by `***`.
    pub fn parse(upstream: &str) -> Result<Self, String> {
        // SECURITY: the error is printed and logged: never with a password.
        let shown = redacted(upstream);
        let url = Url::parse(upstream).map_err(|e| format!("{shown:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{shown:?}: not an http(s) URL"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{shown:?}: has a query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("{shown:?}: has credentials"));
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
        if path.contains(['\\', ';']) || !safe_segments(path) {
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

/// `url` with everything from its authority's start (after `://`, or the
/// start) to its last `@` replaced by `***`: user information is gone even
/// where `url` does not parse (`http://u:p/w@host`, `http://u:pw@h:99999`),
/// at the price of hiding more when a path or query has an `@`.
pub fn redacted(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    match url[start..].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

/// Whether `path` is `prefix` or below it.
pub fn under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Whether every segment of `path` (which starts with `/`) is safe: none
/// empty but the last, each [`safe_segment`].
fn safe_segments(path: &str) -> bool {
    let mut segments = path[1..].split('/').peekable();
    while let Some(segment) = segments.next() {
        // SECURITY: `//evil.example/x` is forwarded as is; a backend that
        // resolves the request target as a URL reference (`new URL(path,
        // base)`) reads it as another host. Empty segments are refused,
        // but for a trailing `/`.
        let last = segments.peek().is_none();
        if segment.is_empty() && !last {
            return false;
        }
        if !segment.is_empty() && !safe_segment(segment) {
            return false;
        }
    }
    true
}

/// Whether `bytes` has a `%` not followed by two hex digits.
fn bad_escape(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })
}

/// Whether `bytes` has a `%u` escape (`%u002e`, decoded by IIS).
fn u_escape(bytes: &[u8]) -> bool {
    bytes.windows(6).any(|w| {
        w[0] == b'%' && w[1].eq_ignore_ascii_case(&b'u') && w[2..].iter().all(u8::is_ascii_hexdigit)
    })
}

/// Whether one raw, non-empty path segment, decoded up to [`MAX_DECODES`]
/// times, is never made only of dots and spaces nor hides a separator, a
/// control or non-ASCII character, bytes that are not UTF-8 or a `%u`
/// escape.
fn safe_segment(segment: &str) -> bool {
    // SECURITY: a `%` that starts no escape is passed on by the URL parser
    // and decoded by some servers in their own way (`%u002e` is `.` to
    // IIS). Once decoded, a `%` may stand alone (`100%25` is `100%`), but
    // not as a `%u` escape.
    if bad_escape(segment.as_bytes()) {
        return false;
    }
    let mut current: Vec<u8> = segment.as_bytes().to_vec();
    for _ in 0..=MAX_DECODES {
        // SECURITY: servers trim trailing dots and spaces (Windows) or read
        // bad UTF-8 and non-ASCII leniently (an overlong `%c0%ae`, a
        // fullwidth `．` normalised to NFKC): each can turn a segment into
        // `..`. Only dots and spaces, non-ASCII and non-UTF-8 are refused.
        if current.iter().all(|&b| b == b'.' || b == b' ') {
            return false;
        }
        if current
            .iter()
            .any(|&b| b == b'/' || b == b'\\' || b == b';' || b.is_ascii_control() || !b.is_ascii())
            || u_escape(&current)
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
