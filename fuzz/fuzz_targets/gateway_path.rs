//! The gateway's path handling (`examples/common/upstream_path.rs`, included
//! as it is): arbitrary bytes split into an upstream base URL and a request
//! target. Nothing may panic; a target that is not refused must give a URL
//! on the base's origin whose path is under the base path, with no dot
//! segment (also percent-encoded), no `\` and no `;`.

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

fn is_dot_segment(segment: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
    decoded == "." || decoded == ".."
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
        assert_eq!(url.origin(), base_url.origin(), "{base} + {target} -> {url}");
        let path = url.path();
        assert!(under(path, parsed.prefix()), "{base} + {target} -> {url}");
        let below = &path[parsed.prefix().len()..];
        assert!(
            !below.split('/').any(is_dot_segment),
            "{base} + {target} -> {url}: a dot segment"
        );
        assert!(!below.contains(['\\', ';']), "{base} + {target} -> {url}");
        // Normalizing the joined URL again (what the upstream would do)
        // changes nothing.
        let again = url::Url::parse(url.as_str()).expect("the joined URL parses");
        assert_eq!(again.path(), path, "{base} + {target}");
    }
});
