//! 2, 4 and 5 segments, stray dots, empty tokens.

use authlayer::Reason;

use super::builders::{segments, valid};
use super::{Corpus, Keys, Reject};

pub fn cases(corpus: &mut Corpus, keys: &Keys) {
    const C: &str = "wrong number of segments";
    let token = valid(keys);
    let (h, p, s) = segments(&token);
    for (name, t) in [
        ("2 segments", format!("{h}.{p}")),
        ("4 segments", format!("{token}.{s}")),
        ("5 segments (JWE shape)", format!("{h}.{p}.{s}.{s}.{s}")),
        ("trailing dot", format!("{token}.")),
        ("two trailing dots", format!("{token}..")),
        ("leading dot", format!(".{token}")),
        ("empty header", format!(".{p}.{s}")),
        ("empty payload", format!("{h}..{s}")),
        ("double dot inside", format!("{h}..{p}.{s}")),
        ("only dots", "..".to_owned()),
        ("one dot", ".".to_owned()),
        ("one segment", h.to_owned()),
        ("garbage", "not-a-token".to_owned()),
    ] {
        corpus.token(C, name, t, Reject(Reason::Malformed));
    }
}
