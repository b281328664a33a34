//! `Policy` over arbitrary claims: `Claims::from_json` on any payload, then
//! a policy tree chosen from the input evaluated over it. Nothing may panic,
//! the crate agrees with the three-valued reference model shared with the
//! randomized test (`tests/it/policy_model.rs`), and `not(p)` never allows
//! where `p` cannot be evaluated.
//!
//! The first input byte picks the mode:
//! - even: the rest drives every choice (the policy tree, then each claim's
//!   shape), so most inputs are well-formed claims of odd shapes;
//! - odd: the rest is `choices 0xFF payload`: the choices pick the policy,
//!   the payload is the claims JSON as it is.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[path = "../../tests/it/policy_model.rs"]
mod policy_model;

use policy_model::{Choose, Shape, agrees, random_claims};

/// Choices read from the input, one byte each; zeros once it runs out.
struct Bytes<'a>(&'a [u8]);

impl Choose for Bytes<'_> {
    fn below(&mut self, n: usize) -> usize {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        usize::from(b) % n
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let mut bytes = Bytes(rest);
        let shape = Shape::random(&mut bytes, 4);
        let claims = Value::Object(random_claims(&mut bytes)).to_string();
        if let Err(why) = agrees(&shape, &claims) {
            panic!("{why}");
        }
    } else {
        let split = rest.iter().position(|b| *b == 0xFF).unwrap_or(rest.len());
        let (choices, payload) = rest.split_at(split);
        let shape = Shape::random(&mut Bytes(choices), 4);
        let payload = String::from_utf8_lossy(payload.get(1..).unwrap_or_default());
        if let Err(why) = agrees(&shape, &payload) {
            panic!("{why}");
        }
    }
});
