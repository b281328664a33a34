//! The `htu` comparison: the URI the proof names and the URI the client
//! called, both without query and fragment (RFC 9449 §4.3 check 9), after
//! RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based normalization.

use url::{Position, Url};

/// The longest URI compared: bounds the parse before any work (the whole
/// proof is bounded too; this also bounds the request's side).
const MAX_URI_LEN: usize = 8 * 1024;

/// `uri` in the normal form two spellings of one target share, or `None`
/// if it is not an absolute `http`/`https` URI.
///
/// The WHATWG parser of the `url` crate does most of RFC 3986 §6.2.2–6.2.3:
/// scheme and host to lower case, the default port dropped, dot segments
/// removed (`%2e` forms included), an empty path made `/`. What it leaves,
/// done here: percent-encodings in the path have upper-case hex digits and
/// percent-encoded unreserved characters are decoded (§6.2.2.1–2).
///
/// SECURITY: both sides go through the same function, so a spelling the
/// parser accepts leniently (a backslash, a tab) can only name the target
/// it resolves to, never another one; a scheme other than http(s), a
/// relative reference or an unparsable URI never matches anything.
pub(crate) fn normalize(uri: &str) -> Option<String> {
    if uri.len() > MAX_URI_LEN {
        return None;
    }
    let url = Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return None;
    }
    let mut out = String::with_capacity(uri.len());
    out.push_str(&url[..Position::BeforePath]);
    normalize_percent(url.path(), &mut out);
    Some(out)
}

/// Copies `path` to `out` with every `%XX` in upper case, and decoded when
/// it encodes an unreserved character (`A-Z a-z 0-9 - . _ ~`).
fn normalize_percent(path: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut rest = path;
    while let Some((before, after)) = rest.split_once('%') {
        out.push_str(before);
        // Two hex digits exactly (`from_str_radix` alone would take `%+1`).
        let byte = match after.as_bytes() {
            [h, l, ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => after
                .get(..2)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok()),
            _ => None,
        };
        match byte {
            Some(byte)
                if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') =>
            {
                out.push(char::from(byte));
            }
            Some(byte) => {
                out.push('%');
                for nibble in [byte >> 4, byte & 0xf] {
                    out.push(char::from(
                        HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
                    ));
                }
            }
            None => {
                // A lone `%` stays as it is (the parser keeps it too).
                out.push('%');
                rest = after;
                continue;
            }
        }
        rest = after.get(2..).unwrap_or_default();
    }
    out.push_str(rest);
}

/// Whether the proof's `htu` names the URI the client called.
#[cfg(test)] // only the tests need it
pub(crate) fn matches(htu: &str, requested: &str) -> bool {
    match (normalize(htu), normalize(requested)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_target_in_different_spellings_matches() {
        let same = [
            (
                "HTTPS://API.Example.COM/orders",
                "https://api.example.com/orders",
            ),
            (
                "https://api.example.com:443/orders",
                "https://api.example.com/orders",
            ),
            (
                "http://api.example.com:80/orders",
                "http://api.example.com/orders",
            ),
            ("https://api.example.com", "https://api.example.com/"),
            ("https://api.example.com:443", "https://api.example.com/"),
            (
                "https://api.example.com/a/./b/../c",
                "https://api.example.com/a/c",
            ),
            (
                "https://api.example.com/a/%2e%2E/c",
                "https://api.example.com/c",
            ),
            (
                "https://api.example.com/%7Euser/x",
                "https://api.example.com/~user/x",
            ),
            (
                "https://api.example.com/%41%62%2D%5f",
                "https://api.example.com/Ab-_",
            ),
            (
                "https://api.example.com/a%2fb",
                "https://api.example.com/a%2Fb",
            ),
            (
                "https://api.example.com/a%c3%a9",
                "https://api.example.com/a%C3%A9",
            ),
            (
                "https://api.example.com/orders?x=1",
                "https://api.example.com/orders",
            ),
            (
                "https://api.example.com/orders#frag",
                "https://api.example.com/orders?y=2",
            ),
            (
                "https://api.example.com/a b",
                "https://api.example.com/a%20b",
            ),
            ("http://[0:0::1]:80/x", "http://[::1]/x"),
            (
                "https://api.example.com/100%",
                "https://api.example.com/100%",
            ),
        ];
        for (a, b) in same {
            assert!(matches(a, b), "{a} should match {b}");
            assert!(matches(b, a), "{b} should match {a}");
        }
    }

    #[test]
    fn different_targets_do_not_match() {
        let different = [
            (
                "http://api.example.com/orders",
                "https://api.example.com/orders",
            ),
            (
                "https://api.example.com:8443/orders",
                "https://api.example.com/orders",
            ),
            (
                "https://api.example.com:80/orders",
                "https://api.example.com/orders",
            ),
            (
                "https://other.example.com/orders",
                "https://api.example.com/orders",
            ),
            (
                "https://api.example.com/orders/",
                "https://api.example.com/orders",
            ),
            (
                "https://api.example.com/Orders",
                "https://api.example.com/orders",
            ),
            (
                "https://api.example.com/a%2Fb",
                "https://api.example.com/a/b",
            ),
            ("https://api.example.com/a%3Fb", "https://api.example.com/a"),
            (
                "https://user@api.example.com/orders",
                "https://api.example.com/orders",
            ),
        ];
        for (a, b) in different {
            assert!(!matches(a, b), "{a} must not match {b}");
            assert!(!matches(b, a), "{b} must not match {a}");
        }
    }

    #[test]
    fn only_absolute_http_uris_are_compared() {
        for bad in [
            "/orders",
            "api.example.com/orders",
            "ftp://api.example.com/orders",
            "file:///etc/passwd",
            "data:text/plain,x",
            "https://",
            "",
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
            assert!(!matches(bad, bad), "{bad:?} never matches, not even itself");
        }
        let long = format!("https://api.example.com/{}", "a".repeat(MAX_URI_LEN));
        assert_eq!(normalize(&long), None);
    }

    #[test]
    fn the_normal_form_is_the_uri_without_query_and_fragment() {
        assert_eq!(
            normalize("HTTPS://Api.Example.com:443/a/../b/%7e%2f?q=1#f").as_deref(),
            Some("https://api.example.com/b/~%2F")
        );
    }
}
