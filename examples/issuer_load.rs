//! Helper for `benches/issuer_pg.sh`: a bounded loopback load on running
//! issuer replicas, reporting logins or refreshes per second.
//!
//! ```text
//! cargo run --release --example issuer_load -- login|refresh SECONDS CONCURRENCY USER PASSWORD URL...
//! ```
//!
//! `CONCURRENCY` workers spread their requests round-robin over the
//! replicas' base URLs (`http://127.0.0.1:PORT`) for `SECONDS` (at most
//! 60). Worker `i` is user `USERi` (`USER0`, `USER1`, …, all with
//! `PASSWORD`): the issuer's back-off lets one name from one source have
//! only a few logins in flight at once, as it should. `login` posts
//! `/login` again and again; `refresh` logs each worker in once, then
//! refreshes its own session with the token each answer returns. Only `127.0.0.1` URLs are accepted. Prints one line:
//! `MODE replicas=N concurrency=C seconds=S ok=… errors=… per_second=…`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn post(http: &reqwest::Client, url: &str, body: String) -> Option<Value> {
    let res = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    res.json().await.ok()
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, seconds, concurrency, user, password, urls @ ..] = args.as_slice() else {
        return Err(
            "usage: issuer_load login|refresh SECONDS CONCURRENCY USER PASSWORD URL...".into(),
        );
    };
    let seconds: u64 = seconds.parse().map_err(|_| "SECONDS: a number")?;
    let concurrency: usize = concurrency.parse().map_err(|_| "CONCURRENCY: a number")?;
    if seconds == 0 || seconds > 60 || concurrency == 0 || concurrency > 256 || urls.is_empty() {
        return Err("1..=60 seconds, 1..=256 workers, at least one URL".into());
    }
    // Loopback only: this is a load generator.
    if let Some(url) = urls.iter().find(|u| !u.starts_with("http://127.0.0.1:")) {
        return Err(format!("{url}: only http://127.0.0.1:PORT URLs"));
    }
    if !matches!(mode.as_str(), "login" | "refresh") {
        return Err("MODE: login or refresh".into());
    }
    let http = reqwest::Client::new();
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let login_body = |worker: usize| {
        form(&[
            ("username", format!("{user}{worker}").as_str()),
            ("password", password),
        ])
    };
    // Refresh mode: every worker's session first, outside the measured time.
    let mut sessions = Vec::new();
    for worker in 0..concurrency {
        if mode == "refresh" {
            let url = format!("{}/login", urls[worker % urls.len()]);
            let body = post(&http, &url, login_body(worker))
                .await
                .ok_or("the set-up login failed")?;
            let token = body["refresh_token"].as_str().ok_or("no refresh_token")?;
            sessions.push(Some(token.to_owned()));
        } else {
            sessions.push(None);
        }
    }
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut workers = tokio::task::JoinSet::new();
    for (worker, mut session) in sessions.into_iter().enumerate() {
        let (http, ok, errors) = (http.clone(), Arc::clone(&ok), Arc::clone(&errors));
        let urls = urls.to_vec();
        let login_body = login_body(worker);
        workers.spawn(async move {
            let mut turn = worker;
            while Instant::now() < until {
                let base = &urls[turn % urls.len()];
                turn += 1;
                let answer = match &session {
                    None => post(&http, &format!("{base}/login"), login_body.clone()).await,
                    Some(token) => {
                        let body = form(&[("refresh_token", token)]);
                        post(&http, &format!("{base}/refresh"), body).await
                    }
                };
                let Some(body) = answer else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    // A refresh chain that failed cannot continue.
                    if session.is_some() {
                        return;
                    }
                    continue;
                };
                ok.fetch_add(1, Ordering::Relaxed);
                if let (Some(_), Some(next)) = (&session, body["refresh_token"].as_str()) {
                    session = Some(next.to_owned());
                }
            }
        });
    }
    workers.join_all().await;
    let elapsed = start.elapsed().as_secs_f64();
    let done = ok.load(Ordering::Relaxed);
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let rate = done as f64 / elapsed;
    println!(
        "{mode} replicas={} concurrency={concurrency} seconds={elapsed:.1} ok={done} errors={} per_second={rate:.0}",
        urls.len(),
        errors.load(Ordering::Relaxed)
    );
    Ok(())
}
