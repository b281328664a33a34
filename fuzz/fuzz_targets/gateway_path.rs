//! The gateway's path handling (`examples/common/upstream_path.rs`, included
//! as it is): arbitrary bytes split into an upstream base URL and a request
//! target. Nothing may panic; a target that is not refused must give a URL
//! on the base's origin whose path is under the base path, with no `\`, no
//! `;`, no empty segment but a last one, no `%` that starts no escape, and
//! segments that, percent-decoded again and again until they stop changing,
//! are ASCII without control characters, `/`, `\`, `;` or `%u` escapes, and
//! not made only of dots and spaces.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../examples/common/upstream_path.rs"]
#[allow(dead_code)]
mod upstream_path;

use upstream_path::{Base, under};

/// Bases tried when the input does not name one (a newline separates a
/// custom base from the target).
const BASES: [&str; 4] = [
    "http://127.0.0.1:3000",
    "http://127.0.0.1:3000/api",
    "http://127.0.0.1:3000/api/",
    "https://upstream.example/a/b%20c",
];

/// Whether one segment below the base (not empty), decoded until it stops
/// changing, is what the gateway may forward.
fn segment_ok(segment: &str) -> bool {
    let raw = segment.as_bytes();
    for (i, &b) in raw.iter().enumerate() {
        if b == b'%'
            && !(i + 2 < raw.len()
                && raw[i + 1].is_ascii_hexdigit()
                && raw[i + 2].is_ascii_hexdigit())
        {
            return false;
        }
    }
    let mut current = raw.to_vec();
    loop {
        let Ok(text) = std::str::from_utf8(&current) else {
            return false;
        };
        if !text.is_ascii()
            || text.chars().all(|c| c == '.' || c == ' ')
            || text.contains(['/', '\\', ';'])
            || text.chars().any(|c| c.is_ascii_control())
            || text
                .to_ascii_lowercase()
                .split("%u")
                .skip(1)
                .any(|rest| rest.len() >= 4 && rest[..4].chars().all(|c| c.is_ascii_hexdigit()))
        {
            return false;
        }
        let next: Vec<u8> = percent_encoding::percent_decode(&current).collect();
        if next == current {
            return true;
        }
        current = next;
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (bases, target): (Vec<String>, &str) = match text.split_once('\n') {
        Some((base, target)) => (vec![base.to_owned()], target),
        None => (BASES.iter().map(|b| (*b).to_owned()).collect(), text),
    };
    // Only targets that hyper would hand the gateway: a valid request target.
    if http::uri::PathAndQuery::try_from(target).is_err() {
        return;
    }
    for base in bases {
        let Ok(parsed) = Base::parse(&base) else {
            continue;
        };
        let Ok(url) = parsed.join(target) else {
            continue;
        };
        let base_url = url::Url::parse(&base).expect("a base that parsed once parses again");
        assert_eq!(
            url.origin(),
            base_url.origin(),
            "{base} + {target} -> {url}"
        );
        let path = url.path();
        assert!(under(path, parsed.prefix()), "{base} + {target} -> {url}");
        let below = &path[parsed.prefix().len()..];
        assert!(!below.contains(['\\', ';']), "{base} + {target} -> {url}");
        let segments: Vec<&str> = below.split('/').skip(1).collect();
        for (i, segment) in segments.iter().enumerate() {
            if segment.is_empty() {
                assert_eq!(
                    i + 1,
                    segments.len(),
                    "{base} + {target} -> {url}: empty segment"
                );
            } else {
                assert!(
                    segment_ok(segment),
                    "{base} + {target} -> {url}: {segment:?}"
                );
            }
        }
        // Normalizing the joined URL again (what the upstream would do)
        // changes nothing.
        let again = url::Url::parse(url.as_str()).expect("the joined URL parses");
        assert_eq!(again.path(), path, "{base} + {target}");
    }
});
